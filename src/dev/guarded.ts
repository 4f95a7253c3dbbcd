// Embedded servers that die with nurture. Neither redis-server nor postgres notices its parent dying (and
// Node cannot set PR_SET_PDEATHSIG), so each runs under a tiny sh watchdog that holds a pipe from us on
// its stdin: the pipe closes when we stop it, when Node exits, and also when Node is killed outright
// (SIGKILL, OOM), and the watchdog then stops the server with the server's own shutdown signal.
import { spawn, type ChildProcess } from 'node:child_process';
import { recentOutput } from './processes.js';

const WATCHDOG = [
  'signal=$1; shift',
  '"$@" & pid=$!',
  // A signal to the watchdog itself stops the server too.
  'trap "kill -$signal $pid 2>/dev/null" INT TERM HUP',
  'read _ignored',
  'kill -$signal $pid 2>/dev/null',
  'wait $pid',
].join('\n');

export interface GuardedProcess {
  /** The watchdog (the server is its child). */
  child: ChildProcess;
  /** The server's last lines of output, to explain a failed start. */
  output: ReturnType<typeof recentOutput>;
  exited: Promise<void>;
  /** Stops the server with its shutdown signal; past `timeoutMs`, with SIGKILL. Once only. */
  stop(timeoutMs: number): Promise<void>;
}

export function spawnGuarded(
  command: string,
  args: string[],
  options: {
    /** The signal that shuts the server down cleanly (Postgres: INT, a fast shutdown; Redis: TERM). */
    stopSignal: 'INT' | 'TERM';
    uid?: number;
    gid?: number;
    env?: NodeJS.ProcessEnv;
    onOutput?: (chunk: string) => void;
  },
): GuardedProcess {
  const child = spawn('sh', ['-c', WATCHDOG, 'nurture-watchdog', options.stopSignal, command, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own session and process group: a Ctrl-C or a closing terminal reaches only nurture, which
    // drains its workers first and then stops the servers; them going away first would fail those jobs.
    detached: true,
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.gid !== undefined ? { gid: options.gid } : {}),
    ...(options.env ? { env: options.env } : {}),
  });
  const output = recentOutput();
  const onData = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    output.push(text);
    options.onOutput?.(text);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  // A closed stdin is the stop signal, so an EPIPE after the server died is expected, not an error.
  child.stdin?.on('error', () => {});
  // A spawn failure (no sh) surfaces as the server not starting; don't let it crash the process.
  child.on('error', (error) => output.push(error.message));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('close', () => resolve());
  });

  let stopping: Promise<void> | undefined;
  const stop = (timeoutMs: number) =>
    (stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin?.end();
      // The watchdog's group holds only the watchdog and the server: a stuck server is killed with it.
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    })());
  return { child, output, exited, stop };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}
