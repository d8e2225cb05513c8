// Keeps only the V8 coverage of the process that ran the tests (the one that loaded tests/**/*.test.ts).
// c8 merges raw V8 ranges by file URL before mapping them to sources, and the processes some tests
// spawn (`npm run cli`, runs through the tsx CLI) get a differently transformed copy of the same file:
// merged, the ranges land on the wrong lines and the figures are wrong. What those children run is
// mostly run in-process by other tests too.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(process.argv[2] ?? 'coverage', 'tmp');
const isTestRun = (file) => JSON.parse(readFileSync(file, 'utf8')).result.some((r) => /\/tests\/.+\.test\.ts$/.test(r.url));
let kept = 0;
for (const name of readdirSync(dir)) {
  const file = join(dir, name);
  if (isTestRun(file)) kept++;
  else rmSync(file);
}
if (!kept) {
  console.error(`no coverage of the test process in ${dir}`);
  process.exit(1);
}
