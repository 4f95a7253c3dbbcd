// Redis restarts empty (no persistence, as a cache-configured or freshly replaced Redis does) while a
// fan-out the API already acknowledged is still queued. Before the fan-out was a row in Postgres, that
// lost it (0 of 1,000). Now the worker processes ride the restart out and reconcile — whose schedule each
// worker puts back — queues the fan-out again from its row: every lead gets its email once, no restart.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../src/dev/ports.js';
import { pingRedis } from '../../src/dev/probe.js';
import { fanoutJobId } from '../../src/queue/index.js';
import { startFanOut } from '../../src/usecases/fanOutSegment.js';
import { insertLeads, owed, recordResult, settled, startScene, tally, waitFor, waitForOrExplain, type Scene } from './support.js';

const LEADS = 1_000;

/** A redis-server of our own, without persistence: a restart comes back empty. */
function redisServer(port: number): { child: ChildProcess; ready: Promise<void>; stop(): Promise<void> } {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    ready: waitFor('redis-server answering', async () => (await pingRedis('127.0.0.1', port, 300)) === '+PONG', 10_000, 50).then(() => {}),
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

let port = 0;
let redis: ReturnType<typeof redisServer>;
let s: Scene;
beforeAll(async () => {
  port = await freePort();
  redis = redisServer(port);
  await redis.ready;
  s = await startScene({ redisUrl: `redis://127.0.0.1:${port}` });
});
afterAll(async () => {
  await s?.close();
  await redis?.stop();
});

it('finishes a queued fan-out after Redis restarts empty, through reconcile alone, sending none twice', async () => {
  const leadIds = await insertLeads(s.ctx, LEADS, 'economic_buyer', 'frestart');
  const worker = await s.worker('frestart', { reconcileEverySeconds: 2 });
  // The fan-out queue is paused (a backlog, a deploy): the acknowledged fan-out waits in Redis.
  await s.ctx.queues.fanout.pause();
  const { fanoutId } = await startFanOut(s.ctx, 'chaos-blast');
  expect(await s.ctx.queues.fanout.getJob(fanoutJobId(fanoutId, null))).toBeDefined();

  // Redis goes down and comes back empty on the same port: the job, the pause and the schedules are gone.
  await redis.stop();
  redis = redisServer(port);
  await redis.ready;
  const restarted = Date.now();

  await waitForOrExplain(s, 'every lead sent, nothing left in flight', () => settled(s, LEADS), 120_000, 500);
  const recoveredMs = Date.now() - restarted;
  const [row] = await s.db.sql<{ status: string; enrolled: number }[]>`select status, enrolled from fanouts where id = ${fanoutId}`;

  const t = await tally('Redis restarted empty with a fan-out queued', s.db.sql, s.relay, owed(leadIds, 'chaos-blast', ['benchmark']));
  recordResult(21, t, `${LEADS}-lead fan-out acknowledged and queued, Redis restarted without persistence; reconcile (RECONCILE_EVERY_SECONDS=2) queued it again from its row, all sent ${(recoveredMs / 1000).toFixed(0)} s after the restart, no process restarted (before: 0 of 1,000)`);
  expect(row).toEqual({ status: 'done', enrolled: LEADS });
  expect(t.statuses).toEqual({ sent: LEADS });
  expect(t).toMatchObject({ delivered: LEADS, duplicates: 0, lost: 0, uncertain: 0, strangers: 0 });
  expect(worker.alive()).toBe(true);
  // The only complaint allowed: BullMQ finding that a job it held is gone with the old Redis ("Missing key for job").
  expect(worker.stderr().split('\n').filter((l) => /Error:|unhandled|uncaught/i.test(l) && !/Missing key for job/.test(l))).toEqual([]);
});
