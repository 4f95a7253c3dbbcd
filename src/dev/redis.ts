import type { ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { DevServiceError } from './errors.js';
import { freePort } from './ports.js';
import { spawnGuarded } from './guarded.js';
import { pingRedis } from './probe.js';
import { isProcessAlive, processCommand, sleep } from './processes.js';

export interface EmbeddedRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
// A stable port when free, so the URL (and a redis-cli habit) survives restarts; 6379 is left to real ones.
const PREFERRED_PORT = 63790;
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

/** Runs redis-server from PATH on a free 127.0.0.1 port, keeping its data (AOF) in `${dataDir}/redis`. */
export async function startEmbeddedRedis(options: { dataDir: string }): Promise<EmbeddedRedis> {
  const redisServer = await findOnPath('redis-server');
  if (!redisServer) throw redisNotInstalled();

  const dir = path.resolve(options.dataDir, 'redis');
  await mkdir(dir, { recursive: true });
  const pidFile = path.join(dir, 'redis.pid');
  await refuseWhenAlreadyRunning(pidFile, dir);

  const port = await freePort(PREFERRED_PORT);
  const args = [
    '--port', String(port),
    '--bind', HOST,
    '--dir', dir,
    '--appendonly', 'yes',
    '--pidfile', pidFile,
    '--daemonize', 'no',
    '--protected-mode', 'yes',
  ];
  // Dies with nurture even when nurture is killed outright (see guarded.ts).
  const redis = spawnGuarded(redisServer, args, { stopSignal: 'TERM' });
  try {
    await waitUntilReady(port, redis.child);
  } catch (error) {
    await redis.stop(STOP_TIMEOUT_MS);
    throw new DevServiceError(
      'REDIS_START_FAILED',
      `Embedded Redis (${redisServer}, data in ${dir}) did not start: ${(error as Error).message}\n${redis.output.text()}`,
      { cause: error },
    );
  }

  return {
    url: `redis://${HOST}:${port}`,
    port,
    stop: () => redis.stop(STOP_TIMEOUT_MS),
  };
}

function redisNotInstalled(): DevServiceError {
  return new DevServiceError(
    'REDIS_NOT_INSTALLED',
    [
      'nurture needs Redis, and no REDIS_URL is set, so it tried to start its own — but `redis-server` is not on your PATH.',
      'Install it:',
      '  Debian/Ubuntu:  sudo apt-get install redis-server',
      '  macOS:          brew install redis',
      'or point nurture at a Redis you already run:  REDIS_URL=redis://host:6379',
    ].join('\n'),
  );
}

async function findOnPath(command: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

async function refuseWhenAlreadyRunning(pidFile: string, dir: string): Promise<void> {
  const pid = Number.parseInt(await readFile(pidFile, 'utf8').catch(() => ''), 10);
  if (!Number.isFinite(pid) || !isProcessAlive(pid)) return;
  if (!(await processCommand(pid))?.includes('redis-server')) return;
  // Two servers appending to one AOF would corrupt it.
  throw new DevServiceError(
    'REDIS_START_FAILED',
    `Another redis-server (pid ${pid}) is already using ${dir}. Stop it (kill ${pid}) or set REDIS_URL.`,
  );
}

async function waitUntilReady(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastReply: string | undefined;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('redis-server exited');
    lastReply = await pingRedis(HOST, port, 500);
    if (lastReply === '+PONG') return;
    await sleep(lastReply ? 100 : 25);
  }
  throw new Error(`no PONG within ${READY_TIMEOUT_MS} ms (last reply: ${lastReply ?? 'none'})`);
}
