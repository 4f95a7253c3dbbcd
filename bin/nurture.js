#!/usr/bin/env node
// Runs the nurture CLI in this process: the compiled build in dist/ (made by `npm install` through the
// `prepare` script, or `npm run build`) when it is newer than every source file, else the TypeScript
// sources through tsx, so a checkout being edited always runs what it says and a fresh install answers fast.
// In-process, never a child: a signal sent to this process reaches the code that handles it.
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Written by scripts/build.js only after a build that succeeded, with the time the build started.
const STAMP = join(root, 'dist', '.built');
const SOURCES = ['src', 'workers', 'tsconfig.json', 'tsconfig.build.json'];

function mtimeOf(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** The newest modification time of any file under `path`. */
function newest(path) {
  let stats;
  try {
    stats = statSync(path);
  } catch {
    return 0;
  }
  if (!stats.isDirectory()) return stats.mtimeMs;
  let max = stats.mtimeMs; // a file deleted or renamed changes its folder
  for (const entry of readdirSync(path)) max = Math.max(max, newest(join(path, entry)));
  return max;
}

const built = mtimeOf(STAMP);
if (built !== undefined && SOURCES.every((source) => newest(join(root, source)) <= built)) {
  process.setSourceMapsEnabled(true);
  await import(pathToFileURL(join(root, 'dist', 'src', 'cli', 'main.js')).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(join(root, 'src', 'cli', 'main.ts')).href);
}
