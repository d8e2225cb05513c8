// Runs before `npm ci` installs anything (the preinstall script): says plainly what is missing.
import { spawnSync } from 'node:child_process';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  console.error(`MPS needs Node.js 20.19 or newer; this is ${process.versions.node}. Install it from your package manager or https://nodejs.org, then run npm ci again.`);
  process.exit(1);
}
if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0 && !process.env.REDIS_URL && !process.env.REDIS_CLUSTER_NODES) {
  console.warn(
    'Note: redis-server is not on PATH. `npm start` and `npm test` run a local one, so install it first:\n' +
      '  Debian/Ubuntu: sudo apt-get install -y redis-server\n' +
      '  macOS:         brew install redis\n' +
      'or set REDIS_URL or REDIS_CLUSTER_NODES (and DATABASE_URL) to servers you already run.',
  );
}
