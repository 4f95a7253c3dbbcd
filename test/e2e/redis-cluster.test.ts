// On a Redis Cluster (three masters, started here), two `nurture worker` processes given REDIS_URL as a
// list of nodes carry a segmented fan-out to the end: every lead in the audience gets one email, nobody
// gets two. The queue prefix is hash-tagged there (`t…` becomes `{t…}`), so each queue's keys and the
// send counters (taken several at once in a MULTI) all hash to one slot, on one node.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Cluster } from 'ioredis';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inject } from 'vitest';
import { closeContext, createContext } from '../../src/app.js';
import { makeSettings } from '../../src/config/env.js';
import type { Context } from '../../src/context.js';
import { accounts, leads } from '../../src/db/schema.js';
import { startFanOut } from '../../src/usecases/fanOutSegment.js';
import { eventually, startSmtpSink, type SmtpSink } from '../support/harness.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const CONFIG_DIR = path.join(REPO, 'test/fixtures/config/cluster');
const AUDIENCE = 300;
const SECRETS = { webhookSecret: `whsec_${randomBytes(24).toString('base64')}`, trackingSecret: randomBytes(24).toString('base64url') };

interface WorkerProcess {
  child: ChildProcess;
  stdout: () => string;
  ready: Promise<void>;
  exited: Promise<unknown>;
  stderr: () => string;
}

let cluster: RedisCluster;
let sink: SmtpSink;
let ctx: Context;
let sql: postgres.Sql;
let databaseUrl = '';
let dbName = '';
let dataDir = '';
const prefix = `t${randomBytes(4).toString('hex')}`;
const workers: WorkerProcess[] = [];
const timings: Record<string, number> = {};

beforeAll(async () => {
  const t0 = Date.now();
  [cluster, sink, dataDir] = await Promise.all([startRedisCluster(3), startSmtpSink(), mkdtemp(path.join(os.tmpdir(), 'nurture-cluster-workers-'))]);
  timings.clusterMs = Date.now() - t0;
  const baseUrl = inject('databaseUrl');
  dbName = `nurture_t_${randomBytes(5).toString('hex')}`;
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${dbName}`);
  await admin.end();
  const u = new URL(baseUrl);
  u.pathname = `/${dbName}`;
  databaseUrl = u.toString();
  sql = postgres(databaseUrl, { max: 2, onnotice: () => {} });
  // The test's own context (it never sends): migrates before any worker starts, and starts the fan-out.
  ctx = await createContext({
    databaseUrl,
    redisUrl: cluster.url,
    smtpUrl: null,
    configDir: CONFIG_DIR,
    templatesDir: path.join(REPO, 'templates'),
    queuePrefix: prefix,
    dbPoolSize: 3,
    settings: makeSettings({ ...SECRETS, publicUrl: 'http://127.0.0.1:9' }),
  });
});

afterAll(async () => {
  await Promise.all(workers.map(stopWorker));
  if (ctx) await closeContext(ctx).catch(() => {});
  await sql?.end({ timeout: 2 }).catch(() => {});
  await sink?.close();
  await cluster?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  if (dbName) {
    const a = postgres(inject('databaseUrl'), { max: 1, onnotice: () => {} });
    await a.unsafe(`drop database if exists ${dbName} with (force)`).catch(() => {});
    await a.end();
  }
});

/** `nurture worker`, as an operator runs it, against the Cluster. */
function spawnWorker(name: string, more: Record<string, string> = {}): WorkerProcess {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    REDIS_URL: cluster.url,
    SMTP_URL: sink.url,
    QUEUE_PREFIX: prefix,
    NURTURE_CONFIG_DIR: CONFIG_DIR,
    NURTURE_TEMPLATES_DIR: path.join(REPO, 'templates'),
    NURTURE_DATA_DIR: path.join(dataDir, name),
    WEBHOOK_SECRET: SECRETS.webhookSecret,
    TRACKING_SECRET: SECRETS.trackingSecret,
    MESSAGE_ID_DOMAIN: 'cluster.test',
    PUBLIC_URL: 'http://127.0.0.1:9',
    WORKER_CONCURRENCY: '10',
    DB_POOL_SIZE: '4',
    ...more,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      if (out.includes('nurture is running')) resolve();
    });
    void exited.then((code) => reject(new Error(`worker ${name} exited (${String(code)}) before it was ready:\n${err}`)));
  });
  ready.catch(() => {});
  const w = { child, ready, exited, stdout: () => out, stderr: () => err };
  workers.push(w);
  return w;
}

async function stopWorker(w: WorkerProcess): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  w.child.kill('SIGTERM');
  const timer = setTimeout(() => w.child.kill('SIGKILL'), 15_000);
  await w.exited;
  clearTimeout(timer);
}

it(`two worker processes on a three-master Redis Cluster send a fan-out of ${AUDIENCE} leads once each`, async () => {
  expect(ctx.queues.settings.prefix).toBe(`{${prefix}}`);
  const [big, small] = await ctx.db
    .insert(accounts)
    .values([{ key: 'big.test', name: 'Big Co', tier: 'enterprise' }, { key: 'small.test', name: 'Small Co', tier: 'smb' }])
    .returning();
  await ctx.db.insert(leads).values([
    ...Array.from({ length: AUDIENCE }, (_, i) => ({ accountId: big!.id, email: `buyer${i}@big.test`, firstName: `Buyer${i}`, persona: 'economic_buyer', stage: 'awareness' })),
    ...Array.from({ length: 20 }, (_, i) => ({ accountId: small!.id, email: `buyer${i}@small.test`, firstName: `Small${i}`, persona: 'economic_buyer', stage: 'awareness' })),
    ...Array.from({ length: 20 }, (_, i) => ({ accountId: big!.id, email: `champ${i}@big.test`, firstName: `Champ${i}`, persona: 'champion', stage: 'awareness' })),
  ]);

  const t0 = Date.now();
  // The second as it runs behind PgBouncer in transaction mode: no server-side prepared statements.
  const pair = [spawnWorker('w1'), spawnWorker('w2', { DB_PREPARE: '0' })];
  await Promise.all(pair.map((w) => w.ready));
  timings.workersReadyMs = Date.now() - t0;
  const { fanoutId } = await startFanOut(ctx, 'awareness-newsletter');

  const t1 = Date.now();
  await eventually(`${AUDIENCE} messages sent`, async () => {
    const [r] = await sql<{ n: number }[]>`select count(*)::int as n from messages where status = 'sent'`;
    return r!.n >= AUDIENCE;
  }, 60_000).catch(async (err: Error) => {
    const counts = await Promise.all([ctx.queues.fanout, ctx.queues.step, ctx.queues.send].map(async (q) => [q.name, await q.getJobCounts()]));
    const statuses = await sql`select status, count(*)::int as n from messages group by status`;
    throw new Error(`${err.message}\nqueues: ${JSON.stringify(counts)}\nmessages: ${JSON.stringify(statuses)}\n${pair.map((w, i) => `worker ${i + 1} stderr:\n${w.stderr().slice(-3000)}`).join('\n')}`);
  });
  timings.sendMs = Date.now() - t1;
  // Nothing left in flight that could send again: the queues are empty and the fan-out is done.
  await eventually('queues drained and the fan-out done', async () => {
    const [f] = await sql<{ status: string }[]>`select status from fanouts where id = ${fanoutId}`;
    if (f?.status !== 'done') return false;
    for (const q of [ctx.queues.fanout, ctx.queues.step, ctx.queues.send]) {
      const c = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      if (Object.values(c).some((n) => n > 0)) return false;
    }
    return true;
  }, 30_000);

  // Counted at the relay: one DATA per lead in the audience, nobody twice, nobody outside it.
  const recipients = sink.mails.map((m) => m.envelopeTo[0]!);
  expect(recipients).toHaveLength(AUDIENCE);
  expect(new Set(recipients).size).toBe(AUDIENCE);
  expect(recipients.every((r) => /^buyer\d+@big\.test$/.test(r))).toBe(true);
  // Counted in Postgres: one enrollment and one sent message per lead.
  const [rows] = await sql<{ messages: number; sent: number; addresses: number; enrollments: number; leads: number }[]>`
    select (select count(*)::int from messages) as messages,
           (select count(*)::int from messages where status = 'sent') as sent,
           (select count(distinct to_address)::int from messages) as addresses,
           (select count(*)::int from enrollments) as enrollments,
           (select count(distinct lead_id)::int from enrollments) as leads`;
  expect(rows).toEqual({ messages: AUDIENCE, sent: AUDIENCE, addresses: AUDIENCE, enrollments: AUDIENCE, leads: AUDIENCE });

  // Every key the queues and the counters wrote sits under the hash-tagged prefix, on one node's slot.
  const client = ctx.queues.settings.connection as Cluster;
  expect(client).toBeInstanceOf(Cluster);
  const perNode = await Promise.all(client.nodes('master').map((n) => n.keys('*')));
  expect(perNode).toHaveLength(3);
  const keys = perNode.flat();
  expect(keys.length).toBeGreaterThan(0);
  expect(keys.every((k) => k.startsWith(`{${prefix}}:`))).toBe(true);
  expect(perNode.filter((k) => k.length > 0)).toHaveLength(1);
  expect(keys.some((k) => k.startsWith(`{${prefix}}:delivery:limit:`))).toBe(true);
  expect(keys.some((k) => k.startsWith(`{${prefix}}:send:`))).toBe(true);
  for (const w of pair) {
    expect(w.stdout()).toContain(`a Redis Cluster (from REDIS_URL); queue keys under {${prefix}}`);
    expect(w.stderr()).not.toMatch(/CROSSSLOT|MOVED|ClusterAllFailedError|prepared statement/);
  }
  console.log(`[redis-cluster] cluster up in ${timings.clusterMs} ms; two workers ready in ${timings.workersReadyMs} ms; ${AUDIENCE} sent in ${timings.sendMs} ms`);
}, 150_000);
