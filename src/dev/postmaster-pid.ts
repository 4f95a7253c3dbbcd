import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { DevServiceError } from './errors.js';
import { isProcessAlive, parentPid, processCommand, waitForExit } from './processes.js';

/**
 * Makes way for a fresh start after a crash. Postgres itself ignores a postmaster.pid whose process is
 * gone, but refuses when that pid now belongs to another process (common in containers, where pids are
 * small and reused), and a postmaster orphaned by a killed Node process still holds the cluster.
 */
export async function clearStalePostmasterPid(clusterDir: string): Promise<void> {
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  const pid = Number.parseInt((await readFile(pidFile, 'utf8').catch(() => '')).split('\n')[0] ?? '', 10);
  if (!Number.isFinite(pid)) return;

  const command = isProcessAlive(pid) ? await processCommand(pid) : undefined;
  if (!command || !command.includes('postgres') || !command.includes(clusterDir)) {
    await rm(pidFile, { force: true });
    return;
  }

  // The server runs under a watchdog (guarded.ts) whose parent is the nurture process that started it.
  let parent = await parentPid(pid);
  let parentCommand = parent && parent > 1 ? await processCommand(parent) : undefined;
  if (parentCommand?.includes('nurture-watchdog')) {
    parent = await parentPid(parent!);
    // Its nurture is gone (pid 1 adopted the watchdog): an orphan, stopped below.
    parentCommand = parent && parent > 1 ? await processCommand(parent) : undefined;
  }
  if (parentCommand?.includes('node')) {
    throw new DevServiceError(
      'POSTGRES_IN_USE',
      `Another nurture process (pid ${parent}) is running the embedded Postgres in ${clusterDir}. ` +
        'Stop it first, or give this one its own data directory or DATABASE_URL.',
    );
  }

  // An orphan from a crashed run: SIGINT is Postgres's fast shutdown, SIGQUIT its immediate one.
  process.kill(pid, 'SIGINT');
  if (!(await waitForExit(pid, 15_000))) {
    process.kill(pid, 'SIGQUIT');
    await waitForExit(pid, 5_000);
  }
  await rm(pidFile, { force: true });
}
