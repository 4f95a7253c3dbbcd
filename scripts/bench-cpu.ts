// CPU seconds of the processes a benchmark's figure depends on, read from outside (Linux /proc and Redis
// INFO): wall time on two shared cores swings with the neighbours' load, CPU time much less.
import { readdirSync, readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** User + system CPU seconds of one process so far (NaN where /proc can't tell). */
export function processCpuSeconds(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds of the Postgres backends serving `dbName` (not its WAL writer or checkpointer; NaN off Linux). */
export function postgresCpuSeconds(dbName: string): number {
  let seconds = 0;
  try {
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(` ${dbName} `)) continue;
      } catch {
        continue; // gone meanwhile
      }
      const s = processCpuSeconds(Number(pid));
      if (!Number.isNaN(s)) seconds += s;
    }
  } catch {
    return Number.NaN;
  }
  return seconds;
}

/** Redis's own CPU seconds so far (INFO cpu): the whole server's. */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const of = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return of('used_cpu_user') + of('used_cpu_sys');
}
