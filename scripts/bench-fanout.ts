// Fan-out of a segmented send to a large audience, up to its sends enqueued (no step or send workers run):
// nurture's keyed pages, each taking its new enrollments' first step in bulk (a constant number of
// queries and statements per page of 1,000: enrollments, message rows and activity, then one addBulk of
// send jobs), beside a naive baseline that loads every matching lead at once and enrolls and enqueues a
// step job for each, one at a time (it stops short of the message rows and send jobs nurture writes).
// nurture runs twice: first as deployed, a worker process on the compiled build (the bench runs `npm run
// build` and forks scripts/bench-fanout-worker.mjs, which takes the fan-out's jobs from the queue as
// `nurture worker` does; its peak RSS is the kernel's VmHWM, and the CPU the worker, Postgres and Redis
// used meanwhile is printed), then in this process under tsx, calling the use case page job by page job
// (handy for --cpu-prof). BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=…" profiles the worker.
// The sample funnel's send window and caps are lifted here, as in bench-send.ts: with them, whether a
// lead's first email is sent now or deferred would depend on the hour the benchmark runs.
//
// Run (with GC exposed, so each approach starts from a collected heap):
//   node --expose-gc --import tsx scripts/bench-fanout.ts [leads=100000] [naiveLeads=leads]
// or simply `npx tsx scripts/bench-fanout.ts` (then peaks include whatever the previous phase left).
// Uses DATABASE_URL (else postgres://postgres@127.0.0.1:5432/postgres) to create a fresh database, and
// REDIS_URL (else redis://127.0.0.1:6379) with a fresh queue prefix; both are removed at the end.
import { fork, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { closeContext, createContext } from '../src/app.js';
import { makeSettings } from '../src/config/env.js';
import type { Context } from '../src/context.js';
import { accounts, activity, enrollments, leads, messages } from '../src/db/schema.js';
import { matchesFilter } from '../src/engine/conditions.js';
import { initialEnrollment } from '../src/engine/decide.js';
import { profileOf } from '../src/db/facts.js';
import { createQueues, QUEUE_NAMES, redisConnection, stepJobId, type Queues } from '../src/queue/index.js';
import { FANOUT_PAGE, FANOUT_PAGES_PER_JOB, fanOutPages, startFanOut } from '../src/usecases/fanOutSegment.js';
import { seedAudience } from './bench-audience.js';
import { postgresCpuSeconds, redisCpuSeconds } from './bench-cpu.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LEADS = Number(process.argv[2] ?? 100_000);
const NAIVE_LEADS = Number(process.argv[3] ?? LEADS);
const SEQUENCE = 'awareness-benchmark'; // config/sequences/awareness-benchmark.yaml: segmented, champions and buyers, not smb
const baseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const gc = (globalThis as { gc?: () => void }).gc;

interface Row {
  approach: string;
  leads: number;
  seconds: number;
  peakRssMb: number;
  peakHeapMb: number;
  /** RSS and heap when the approach started (after a GC when exposed): what the process held already. */
  startRssMb: number;
  startHeapMb: number;
  note?: string;
  /** Where the time went, when measured. */
  cpu?: string;
}

/** Samples RSS and heap every 10 ms and whenever `poke` is called (inside tight loops). */
function memoryProbe() {
  let rss = 0;
  let heap = 0;
  const poke = () => {
    const m = process.memoryUsage();
    if (m.rss > rss) rss = m.rss;
    if (m.heapUsed > heap) heap = m.heapUsed;
  };
  poke();
  const timer = setInterval(poke, 10);
  return {
    poke,
    stop: () => {
      clearInterval(timer);
      poke();
      return { rssMb: rss / 2 ** 20, heapMb: heap / 2 ** 20 };
    },
  };
}

async function measure(approach: string, run: (poke: () => void) => Promise<number>, note?: string): Promise<Row> {
  gc?.();
  const before = process.memoryUsage();
  const probe = memoryProbe();
  const start = process.hrtime.bigint();
  const count = await run(probe.poke);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const peak = probe.stop();
  return { approach, leads: count, seconds, peakRssMb: peak.rssMb, peakHeapMb: peak.heapMb, startRssMb: before.rss / 2 ** 20, startHeapMb: before.heapUsed / 2 ** 20, ...(note ? { note } : {}) };
}

/** nurture: keyed pages through the real use case, as the fan-out worker runs them (a few pages per job). */
async function nurtureFanOut(ctx: Context, poke: () => void): Promise<number> {
  // The fan-out's row (and its first page job, which nothing here takes), then every page in turn.
  const { fanoutId } = await startFanOut(ctx, SEQUENCE, 'cli');
  let enrolled = 0;
  for (;;) {
    const page = await fanOutPages(ctx, fanoutId);
    enrolled += page.enrolled;
    poke();
    if (page.status !== 'running') return enrolled;
  }
}

/**
 * nurture as deployed: `nurture worker` runs the compiled build (dist/, no tsx) and takes fan-out jobs from
 * the queue, ten pages a job. This forks scripts/bench-fanout-worker.mjs on a fresh build, with only the
 * fan-out worker running, and takes its time and peak RSS from the kernel's count (VmHWM).
 */
async function workerProcessFanOut(databaseUrl: string, prefix: string, redis: Redis): Promise<Row> {
  const built = spawnSync(process.execPath, [path.join(root, 'scripts/build.js')], { cwd: root, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`npm run build failed: ${built.stderr || built.stdout}`);
  const child = fork(path.join(root, 'scripts/bench-fanout-worker.mjs'), [], {
    // Plain node, as bin/nurture.js runs the build: not this process's --import tsx.
    // BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=…" profiles it, as in bench-send.ts.
    execArgv: [...(gc ? ['--expose-gc'] : []), ...(process.env.BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? [])],
    env: { ...process.env, BENCH_DATABASE_URL: databaseUrl, BENCH_REDIS_URL: redisUrl, BENCH_PREFIX: prefix, BENCH_SEQUENCE: SEQUENCE },
  });
  type Said = { type: 'ready'; startRssMb: number; startHeapMb: number } | { type: 'done'; seconds: number; enrolled: number; cpuSeconds: number; peakRssMb: number; peakHeapMb: number };
  const said: Said[] = [];
  let heard: (() => void) | null = null;
  child.on('message', (m: Said) => {
    said.push(m);
    heard?.();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const next = async (type: Said['type']) => {
    for (;;) {
      const m = said.find((x) => x.type === type);
      if (m) return m;
      const code = await Promise.race([new Promise<'heard'>((r) => (heard = () => r('heard'))), exited]);
      if (code !== 'heard') throw new Error(`bench-fanout-worker exited (${code}) before "${type}"`);
    }
  };
  const ready = (await next('ready')) as Extract<Said, { type: 'ready' }>;
  const dbName = new URL(databaseUrl).pathname.slice(1);
  const [pg0, redis0] = [postgresCpuSeconds(dbName), await redisCpuSeconds(redis)];
  child.send('go');
  const done = (await next('done')) as Extract<Said, { type: 'done' }>;
  const [pg, red] = [postgresCpuSeconds(dbName) - pg0, (await redisCpuSeconds(redis)) - redis0];
  await exited;
  return {
    approach: `nurture worker process (compiled build, fan-out jobs only): ${FANOUT_PAGE}/page, ${FANOUT_PAGES_PER_JOB} pages/job`,
    leads: done.enrolled,
    seconds: done.seconds,
    peakRssMb: done.peakRssMb,
    peakHeapMb: done.peakHeapMb,
    startRssMb: ready.startRssMb,
    startHeapMb: ready.startHeapMb,
    note: 'peak RSS: VmHWM, from the kernel',
    cpu: `CPU seconds meanwhile: worker ${done.cpuSeconds.toFixed(1)}, Postgres backends of this database ${pg.toFixed(1)} (not its WAL writer or checkpointer), Redis ${red.toFixed(1)} (the whole server's)`,
  };
}

/** The baseline: every matching lead in memory, then one enrollment insert and one queue.add per lead. */
async function naiveFanOut(ctx: Context, queues: Queues, limit: number, poke: () => void): Promise<number> {
  const seq = ctx.config.sequences.get(SEQUENCE)!;
  const now = new Date();
  const rows = await ctx.db
    .select({ lead: leads, account: accounts })
    .from(leads)
    .innerJoin(accounts, eq(accounts.id, leads.accountId))
    .where(and(eq(leads.stage, seq.stage), eq(leads.status, 'active'), seq.personas ? inArray(leads.persona, seq.personas) : undefined))
    .orderBy(leads.id)
    .limit(limit);
  poke();
  const audience = rows.filter(({ lead, account }) => !seq.audience || matchesFilter(profileOf(lead, account), seq.audience));
  poke();
  const start = initialEnrollment(seq, now);
  let enrolled = 0;
  for (const { lead } of audience) {
    const [row] = await ctx.db
      .insert(enrollments)
      .values({ leadId: lead.id, sequenceId: seq.id, sequenceVersion: seq.version, state: 'active', cursor: start.cursor, nextDueAt: now, progress: { ...start.progress }, stageEnteredAt: lead.stageEnteredAt })
      .onConflictDoNothing({ target: [enrollments.leadId, enrollments.sequenceId], where: sql`state = 'active'` })
      .returning({ id: enrollments.id });
    if (!row) continue;
    const job = { enrollmentId: row.id, revision: 0 };
    await queues.step.add('step', job, { jobId: stepJobId(job) });
    enrolled++;
    if (enrolled % 500 === 0) poke();
  }
  return enrolled;
}

async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

async function main(): Promise<void> {
  const dbName = `nurture_bench_${randomBytes(5).toString('hex')}`;
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${dbName}`);
  const u = new URL(baseUrl);
  u.pathname = `/${dbName}`;
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  const naivePrefix = `${prefix}n`;
  const redis = new Redis(redisUrl);
  let ctx: Context | null = null;
  let naiveQueues: Queues | null = null;
  let workerQueues: Queues | null = null;
  try {
    ctx = await createContext({
      databaseUrl: u.toString(),
      redisUrl,
      smtpUrl: null,
      configDir: path.join(root, 'config'),
      templatesDir: path.join(root, 'templates'),
      queuePrefix: prefix,
      settings: makeSettings({ webhookSecret: 'whsec_bench', trackingSecret: 'bench', messageIdDomain: 'bench.test' }),
    });
    const { sql: pg } = ctx.database;
    // No window, no caps: every lead's first email goes out now (see the note at the top).
    ctx.config.funnel.caps = {};
    delete ctx.config.funnel.defaults.window;

    // The audience: 100 mid-market accounts and every lead a champion or economic buyer in awareness.
    const seeded = process.hrtime.bigint();
    await seedAudience(pg, LEADS);
    const seedSeconds = Number(process.hrtime.bigint() - seeded) / 1e9;

    const rows: Row[] = [];
    const c = ctx;
    // What each nurture run left, checked below: every lead enrolled, queued and given its send job.
    const checks: string[] = [];
    let complete = true;
    const check = async (label: string, queues: Queues) => {
      const sendJobs = await queues.send.getJobCountByTypes('waiting', 'delayed', 'prioritized');
      const stepJobs = await queues.step.getJobCountByTypes('waiting', 'delayed', 'prioritized');
      const enrolledRows = (await c.db.select({ n: sql<number>`count(*)::int` }).from(enrollments))[0]!.n;
      const messageRows = (await c.db.select({ n: sql<number>`count(*)::int` }).from(messages))[0]!.n;
      checks.push(`${label}: ${enrolledRows} enrollments, ${messageRows} queued messages, ${sendJobs} send jobs, ${stepJobs} step jobs`);
      if (enrolledRows !== LEADS || messageRows !== LEADS || sendJobs !== LEADS) complete = false;
      // Same leads, fresh start for the next approach.
      await c.db.delete(activity);
      await c.db.delete(messages);
      await c.db.delete(enrollments);
      // The next approach starts on tables as clean as the first had (no dead rows to step over).
      await c.database.sql.unsafe('vacuum analyze activity, messages, enrollments');
      gc?.();
    };
    const workerPrefix = `${prefix}w`;
    workerQueues = createQueues({ connection: redisConnection(redisUrl), prefix: workerPrefix });
    rows.push(await workerProcessFanOut(u.toString(), workerPrefix, redis));
    await check('worker process', workerQueues);
    rows.push(await measure(`nurture in this process (tsx): ${FANOUT_PAGE}/page, ${FANOUT_PAGES_PER_JOB} pages/job, first step in bulk, addBulk`, (poke) => nurtureFanOut(c, poke)));
    await check('in this process', ctx.queues);

    naiveQueues = createQueues({ connection: redisConnection(redisUrl), prefix: naivePrefix });
    const nq = naiveQueues;
    rows.push(
      await measure(
        'naive: load all, insert + queue.add per lead',
        (poke) => naiveFanOut(c, nq, NAIVE_LEADS, poke),
        NAIVE_LEADS < LEADS ? `run on ${NAIVE_LEADS.toLocaleString('en-US')} of ${LEADS.toLocaleString('en-US')} leads` : undefined,
      ),
    );
    const naiveJobs = await nq.step.getJobCountByTypes('waiting', 'delayed', 'prioritized');

    const cpu = os.cpus()[0];
    console.log(`machine   ${cpu?.model ?? 'unknown cpu'}, ${os.cpus().length} cores, node ${process.version}, ${os.platform()} ${os.release()}`);
    console.log(`gc        ${gc ? 'exposed: heap collected before each approach' : 'not exposed (run node --expose-gc --import tsx …)'}`);
    console.log(`seed      ${LEADS.toLocaleString('en-US')} leads in one insert … select generate_series: ${seedSeconds.toFixed(2)} s`);
    console.log(`check     nurture ${checks.join('; ')} (the sequence waits a week after its first email); naive: ${naiveJobs} step jobs`);
    console.log('');
    console.log('| approach | leads | seconds | leads/s | peak RSS MB | peak heap MB |');
    console.log('|---|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      const leadsCell = `${r.leads.toLocaleString('en-US')}${r.note ? ` (${r.note})` : ''}`;
      console.log(`| ${r.approach} | ${leadsCell} | ${r.seconds.toFixed(2)} | ${Math.round(r.leads / r.seconds).toLocaleString('en-US')} | ${r.peakRssMb.toFixed(0)} | ${r.peakHeapMb.toFixed(0)} |`);
    }
    console.log('');
    for (const r of rows) if (r.cpu) console.log(`cpu       ${r.approach}: ${r.cpu}`);
    for (const r of rows) console.log(`at start  ${r.approach}: RSS ${r.startRssMb.toFixed(0)} MB, heap ${r.startHeapMb.toFixed(0)} MB (config and drivers loaded, after a GC)`);
    if (!complete) process.exitCode = 1;
  } finally {
    // A queue writes its meta key once it is ready: let that land before closing, or it outlives the cleanup.
    for (const q of [ctx?.queues, naiveQueues, workerQueues]) if (q) await Promise.all(QUEUE_NAMES.map((n) => q[n].waitUntilReady()));
    await naiveQueues?.close();
    await workerQueues?.close();
    if (ctx) await closeContext(ctx);
    await deleteKeys(redis, prefix);
    await deleteKeys(redis, naivePrefix);
    await deleteKeys(redis, `${prefix}w`);
    await redis.quit();
    await admin.unsafe(`drop database if exists ${dbName} with (force)`);
    await admin.end();
  }
}

await main();
