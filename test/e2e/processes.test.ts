// `npm start` stops everything it started, whichever process is signalled, and its embedded Postgres and
// Redis never outlive it, even when it is killed outright. Real processes: npm, node, postgres, redis-server.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { answersOnPort } from '../../src/dev/ports.js';
import { isProcessAlive } from '../../src/dev/processes.js';
import { eventually } from '../support/harness.js';

const REPO = path.resolve(import.meta.dirname, '../..');
// Budgets from what `npm start` allows itself. Starting: Postgres has 60 s to report ready (after initdb
// on a first start, which the first test pays), Redis 15 s, then migrations and the config load.
const START_BUDGET_MS = 60_000 + 15_000 + 45_000;
// Stopping: the drain (DRAIN_TIMEOUT_SECONDS below), then Postgres's fast shutdown (30 s before it is
// killed) and Redis's (10 s).
const DRAIN_SECONDS = 5;
const STOP_BUDGET_MS = DRAIN_SECONDS * 1000 + 30_000 + 10_000;
// Killed outright, nurture stops nothing: each watchdog sees its pipe close and asks its server for the
// same shutdown, which is bounded by the server alone.
const ORPHAN_BUDGET_MS = 30_000 + 10_000;

let tempRoot: string;
let dataDir: string;
const started: ChildProcess[] = [];

beforeAll(async () => {
  tempRoot = await mkdtemp(path.join(os.tmpdir(), 'nurture-processes-'));
  // As root the embedded Postgres runs as "postgres", who must pass through it.
  await chmod(tempRoot, 0o711);
  // One data folder for every start: only the first pays for initdb.
  dataDir = path.join(tempRoot, 'data');
});
afterEach(() => {
  // A failed test must not leave a nurture behind (its services follow it).
  for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});
afterAll(async () => {
  await rm(tempRoot, { recursive: true, force: true });
});

interface Running {
  npm: ChildProcess;
  npmPid: number;
  nodePid: number;
  postgresPid: number;
  redisPid: number;
  ports: { api: number; postgres: number; redis: number };
  output: () => string;
}

/** `npm start` as a user types it, on embedded services, in its own process group (like a terminal's job). */
async function npmStart(): Promise<Running> {
  const env: NodeJS.ProcessEnv = { ...process.env, NURTURE_DATA_DIR: dataDir, PORT: '0', DRAIN_TIMEOUT_SECONDS: String(DRAIN_SECONDS) };
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'SMTP_URL']) delete env[name];
  const npm = spawn('npm', ['start'], { cwd: REPO, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(npm);
  let output = '';
  npm.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  npm.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const api = await eventually(
    'nurture is running',
    async () => {
      if (npm.exitCode !== null) throw new Error(`npm start exited ${npm.exitCode}:\n${output}`);
      return output.match(/API\s+http:\/\/127\.0\.0\.1:(\d+)/)?.[1];
    },
    START_BUDGET_MS,
  );
  const runtime = JSON.parse(await readFile(path.join(dataDir, 'runtime.json'), 'utf8')) as { databaseUrl: string; redisUrl: string };
  return {
    npm,
    npmPid: npm.pid!,
    nodePid: await childOf(npm.pid!),
    postgresPid: await pidIn(path.join(dataDir, 'postgres', 'postmaster.pid')),
    redisPid: await pidIn(path.join(dataDir, 'redis', 'redis.pid')),
    ports: { api: Number(api), postgres: Number(new URL(runtime.databaseUrl).port), redis: Number(new URL(runtime.redisUrl).port) },
    output: () => output,
  };
}

async function childOf(pid: number): Promise<number> {
  // `npm start` runs `exec node bin/nurture.js start`: npm's one child is nurture itself.
  const { stdout } = await promisify(execFile)('pgrep', ['-P', String(pid)]);
  const children = stdout.trim().split(/\s+/).map(Number);
  expect(children).toHaveLength(1);
  return children[0]!;
}

async function pidIn(file: string): Promise<number> {
  return Number.parseInt((await readFile(file, 'utf8')).split('\n')[0]!, 10);
}

async function allGone(r: Running, pids: number[], budgetMs: number, ports = Object.values(r.ports)): Promise<void> {
  await eventually(
    `pids ${pids.join(', ')} gone and ports ${ports.join(', ')} closed`,
    async () => {
      if (pids.some(isProcessAlive)) return false;
      for (const port of ports) if (await answersOnPort(port)) return false;
      return true;
    },
    budgetMs,
  ).catch((error: Error) => {
    throw new Error(`${error.message}\nstill alive: ${pids.filter(isProcessAlive).join(', ') || 'none'}\n${r.output()}`);
  });
}

describe('nurture start, stopped', () => {
  it('stops Postgres, Redis, the API and the workers on SIGTERM to npm, as a supervisor sends it', { timeout: START_BUDGET_MS + STOP_BUDGET_MS }, async () => {
    const r = await npmStart();
    for (const pid of [r.npmPid, r.nodePid, r.postgresPid, r.redisPid]) expect(isProcessAlive(pid)).toBe(true);
    process.kill(r.npmPid, 'SIGTERM');
    await allGone(r, [r.npmPid, r.nodePid, r.postgresPid, r.redisPid], STOP_BUDGET_MS);
    expect(r.output()).toMatch(/SIGTERM: finishing jobs in progress/);
    expect(r.output()).toMatch(/SIGTERM: stopped/);
  });

  it('stops everything on SIGHUP to the process group, as a closing terminal sends it', { timeout: START_BUDGET_MS + STOP_BUDGET_MS }, async () => {
    const r = await npmStart();
    process.kill(-r.npmPid, 'SIGHUP');
    await allGone(r, [r.npmPid, r.nodePid, r.postgresPid, r.redisPid], STOP_BUDGET_MS);
  });

  it('stops everything when npm itself is killed outright', { timeout: START_BUDGET_MS + STOP_BUDGET_MS }, async () => {
    const r = await npmStart();
    process.kill(r.npmPid, 'SIGKILL');
    await allGone(r, [r.nodePid, r.postgresPid, r.redisPid], STOP_BUDGET_MS);
    expect(r.output()).toMatch(/npm exited: finishing jobs in progress/);
  });
});

describe('nurture start, killed outright', () => {
  it('leaves no Postgres or Redis behind: they exit on their own', { timeout: START_BUDGET_MS + ORPHAN_BUDGET_MS }, async () => {
    const r = await npmStart();
    process.kill(r.nodePid, 'SIGKILL');
    await allGone(r, [r.nodePid, r.postgresPid, r.redisPid], ORPHAN_BUDGET_MS, [r.ports.postgres, r.ports.redis]);
    // A crash leaves the runtime file behind; the next start makes its own.
    const again = await npmStart();
    process.kill(again.npmPid, 'SIGTERM');
    await allGone(again, [again.npmPid, again.nodePid, again.postgresPid, again.redisPid], STOP_BUDGET_MS);
  });
});
