import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { loadConfigOrExit } from '../config/env.js';
import { createLogger } from '../config/logger.js';
import { closeDeps, createDeps, type Deps } from './deps.js';
import { describeRedis } from '../config/redis.js';

const SHUTDOWN_TIMEOUT_MS = 30_000;

/** What an entry point tells the process that spawned it with an IPC channel (`npm start`) once it is up. */
export interface ReadyMessage {
  mps: 'ready';
  process: string;
}

/**
 * Runs `start` when `moduleUrl` is the file node was asked to run (the Procfile entry points),
 * and stops it cleanly on SIGTERM/SIGINT: the returned stop function first, then the deps.
 * Its log lines carry `process: name` and `pid`, so that processes sharing a terminal can be told apart.
 * Spawned with an IPC channel (`npm start`), it says when it is up, and stops when its parent is
 * gone (the channel closes), so a killed `npm start` leaves no process behind.
 */
export function runEntryPoint(moduleUrl: string, name: string, start: (deps: Deps) => Promise<() => Promise<void>>): void {
  const invoked = process.argv[1] ? pathToFileURL(realpathSync(process.argv[1])).href : '';
  if (moduleUrl !== invoked) return;
  void (async () => {
    const config = loadConfigOrExit();
    const deps = await createDeps(config, { logger: createLogger(config.LOG_LEVEL).child({ process: name, pid: process.pid }) });
    const stop = await start(deps);
    deps.logger.info({ redis: describeRedis(deps.config) }, `${name} started`);
    let stopping = false;
    const shutdown = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      deps.logger.info({ signal }, `${name} stopping`);
      const timer = setTimeout(() => {
        deps.logger.error(`${name} did not stop within ${SHUTDOWN_TIMEOUT_MS} ms; exiting`);
        process.exit(1);
      }, SHUTDOWN_TIMEOUT_MS);
      timer.unref();
      await stop();
      await closeDeps(deps);
      process.exit(0);
    };
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
    process.on('SIGINT', () => void shutdown('SIGINT'));
    if (process.send && process.connected) {
      process.once('disconnect', () => void shutdown('parent exited'));
      process.send({ mps: 'ready', process: name } satisfies ReadyMessage);
    }
  })().catch((err: unknown) => {
    console.error(`${name} failed to start:`, err);
    process.exit(1);
  });
}
