// `nurture start` leaves the addresses of its embedded services here, so `nurture logs` in another
// terminal finds the same database without any variables set.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RuntimeFile {
  databaseUrl: string;
  redisUrl: string;
  apiUrl: string | null;
}

export const runtimeFilePath = (dataDir: string) => join(dataDir, 'runtime.json');

export function writeRuntimeFile(dataDir: string, r: RuntimeFile): void {
  // With every service and both secrets configured nothing else creates the data folder.
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(runtimeFilePath(dataDir), JSON.stringify(r, null, 2), { mode: 0o600 });
}

export function readRuntimeFile(dataDir: string): RuntimeFile | null {
  const p = runtimeFilePath(dataDir);
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as RuntimeFile) : null;
}

export function removeRuntimeFile(dataDir: string): void {
  rmSync(runtimeFilePath(dataDir), { force: true });
}
