import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user (e.g. postgres started by root as "postgres").
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The command line of a running process, or undefined when it is gone or unreadable. */
export async function processCommand(pid: number): Promise<string | undefined> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.split('\0').join(' ').trim();
  } catch {
    // No /proc (macOS): ask ps.
    try {
      const { stdout } = await execFileAsync('ps', ['-o', 'command=', '-p', String(pid)]);
      return stdout.trim() || undefined;
    } catch {
      return undefined;
    }
  }
}

export async function parentPid(pid: number): Promise<number | undefined> {
  try {
    // Field 4 of /proc/<pid>/stat; the command name before it is parenthesised and may hold spaces.
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number.parseInt(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] ?? '', 10);
    if (Number.isFinite(ppid)) return ppid;
  } catch {
    // No /proc (macOS): ask ps.
  }
  try {
    const { stdout } = await execFileAsync('ps', ['-o', 'ppid=', '-p', String(pid)]);
    const ppid = Number.parseInt(stdout.trim(), 10);
    return Number.isFinite(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isProcessAlive(pid)) return true;
    await sleep(100);
  }
  return !isProcessAlive(pid);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Keeps the last lines a child printed, to explain why it failed. */
export function recentOutput(maxLines = 40) {
  const lines: string[] = [];
  return {
    push(chunk: string) {
      for (const line of chunk.split(/\r?\n/)) {
        if (line.trim() === '') continue;
        lines.push(line);
        if (lines.length > maxLines) lines.shift();
      }
    },
    text: () => lines.join('\n'),
  };
}
