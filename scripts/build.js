// Compiles src/ and workers/ into dist/ for bin/nurture.js: `npm run build`, and `npm install` / `npm ci`
// through the `prepare` script. Without TypeScript (an install that omits dev dependencies) it builds
// nothing and the CLI runs its sources through tsx. Type errors are shown but do not stop the build
// (tsx runs such code too; `npm run typecheck` is the check); a build that wrote nothing leaves no dist/.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, rmSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  console.warn('nurture: TypeScript is not installed (dev dependencies omitted), so no build: the CLI runs its sources through tsx');
  process.exit(0);
}

// A source saved while tsc runs must count as newer than the build: stamp the time it started.
const started = new Date();
rmSync(dist, { recursive: true, force: true });
const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
// tsc exits 2 when it reported type errors but wrote every file.
if (result.status === 2) {
  console.warn('nurture: built despite the type errors above (`npm run typecheck` lists them)');
} else if (result.status !== 0) {
  rmSync(dist, { recursive: true, force: true });
  console.error('nurture: the build failed (see above); the CLI runs its sources through tsx until `npm run build` succeeds');
  process.exit(result.status ?? 1);
}
const stamp = join(dist, '.built');
closeSync(openSync(stamp, 'w'));
utimesSync(stamp, started, started);
