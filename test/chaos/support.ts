// The chaos suite's tools: a fresh database and queue prefix per file, a scriptable SMTP relay that keeps
// every DATA it receives, worker PROCESSES (`nurture worker`, exactly as deployed) that can be killed,
// and a tally of what reached the relay against the rows in Postgres.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync } from 'node:fs';
import { chmod, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { inject } from 'vitest';
import { closeContext, createContext } from '../../src/app.js';
import { settingsFrom } from '../../src/cli/runtime.js';
import { readEnv } from '../../src/config/env.js';
import type { Context } from '../../src/context.js';
import { accounts, leads } from '../../src/db/schema.js';
import type {} from './results-setup.js';

export const REPO = path.resolve(import.meta.dirname, '../..');
export const CONFIG_DIR = path.join(REPO, 'test/fixtures/config/chaos');
export const MESSAGE_ID_DOMAIN = 'chaos.test';

// ---------------------------------------------------------------------------------------------------
// Waiting on state, never on time.

/** Polls `check` until it returns something truthy; fails naming `what` (and the last value seen). */
export async function waitFor<T>(what: string, check: () => Promise<T | null | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(everyMs);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------
// A fresh database on the suite's Postgres (or on any server URL), dropped at the end.

export interface FreshDatabase {
  url: string;
  sql: postgres.Sql;
  drop(): Promise<void>;
}

export async function freshDatabase(serverUrl: string = inject('databaseUrl')): Promise<FreshDatabase> {
  const name = `nurture_chaos_${randomBytes(5).toString('hex')}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  return {
    url,
    sql,
    drop: async () => {
      await sql.end({ timeout: 2 }).catch(() => {});
      const a = postgres(serverUrl, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
      await a.end();
    },
  };
}

export const queuePrefix = () => `chaos${randomBytes(4).toString('hex')}`;

export const SECRETS = {
  webhookSecret: `whsec_${randomBytes(24).toString('base64')}`,
  trackingSecret: randomBytes(24).toString('base64url'),
};

/**
 * The test process's own context (no transport: it never sends). Built before any worker so the
 * migrations run once, not raced by several processes starting together.
 */
export async function testContext(o: { databaseUrl: string; redisUrl: string; prefix: string; sendingTimeoutSeconds?: number; configDir?: string }): Promise<Context> {
  return createContext({
    databaseUrl: o.databaseUrl,
    redisUrl: o.redisUrl,
    smtpUrl: null,
    configDir: o.configDir ?? CONFIG_DIR,
    templatesDir: path.join(REPO, 'templates'),
    queuePrefix: o.prefix,
    dbPoolSize: 3,
    // The same settings a worker process derives from its environment (see workerEnv), by the same code.
    settings: settingsFrom(
      readEnv({ WEBHOOK_SECRET: SECRETS.webhookSecret, TRACKING_SECRET: SECRETS.trackingSecret, MESSAGE_ID_DOMAIN, PUBLIC_URL: 'http://127.0.0.1:9', SENDING_TIMEOUT_SECONDS: String(o.sendingTimeoutSeconds ?? 4) }),
      inject('chaosTmpDir'),
    ),
  });
}
export { closeContext };

/** Inserts `n` leads of one persona at one account, straight into Postgres (what a CRM import leaves). */
export async function insertLeads(ctx: Context, n: number, persona: string, tag: string): Promise<string[]> {
  const [account] = await ctx.db.insert(accounts).values({ key: `${tag}.test`, name: `${tag} Co`, industry: 'logistics', tier: 'enterprise' }).returning();
  const ids: string[] = [];
  for (let i = 0; i < n; i += 1000) {
    const rows = Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ accountId: account!.id, email: `${persona}${i + j}@${tag}.test`, firstName: `Lead${i + j}`, persona, stage: 'awareness' }));
    ids.push(...(await ctx.db.insert(leads).values(rows).returning({ id: leads.id })).map((r) => r.id));
  }
  return ids;
}

// ---------------------------------------------------------------------------------------------------
// The relay: a real SMTP server in this process, scriptable per message.

/** accept (250), drop (hang up without a reply), hang (keep the line open and never reply), or a reply. */
export type DataAnswer = 'accept' | 'drop' | 'hang' | { code: number; message: string };

export interface Receipt {
  /** The row id: Message-IDs are `<messages.id>@chaos.test`. */
  rowId: string | null;
  messageId: string | null;
  envelopeFrom: string;
  envelopeTo: string[];
  /** What the relay answered after DATA: accepted (250), refused (4xx/5xx) or dropped (no reply at all). */
  outcome: 'accepted' | 'refused' | 'dropped';
  at: number;
}

export interface Relay {
  url: string;
  receipts: Receipt[];
  /** How many times DATA for a Message-ID has been received so far (refused ones included). */
  attempts: Map<string, number>;
  /** Answer to RCPT TO: null accepts. */
  rcpt: (address: string) => { code: number; message: string } | null;
  /** Answer after DATA, given the Message-ID and which attempt this is (1-based). */
  data: (messageId: string | null, attempt: number) => DataAnswer;
  /** Delay before answering DATA: gives each send a moment in flight, as a real relay does. */
  latencyMs: number;
  /** The relay goes away: its port refuses connections and the open ones are cut. */
  down(): Promise<void>;
  /** …and comes back on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

const MESSAGE_ID = /^Message-ID:\s*<([^>]+)>/im;

export async function startRelay(opts: { latencyMs?: number } = {}): Promise<Relay> {
  const relay: Omit<Relay, 'url' | 'close' | 'down' | 'up'> = { receipts: [], attempts: new Map(), rcpt: () => null, data: () => 'accept', latencyMs: opts.latencyMs ?? 0 };
  const server: SMTPServer = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    maxClients: 200,
    onRcptTo(address, _session, cb) {
      const r = relay.rcpt(address.address);
      if (!r) return cb();
      cb(Object.assign(new Error(r.message), { responseCode: r.code }));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const head = raw.slice(0, raw.search(/\r?\n\r?\n/) >>> 0);
        const messageId = MESSAGE_ID.exec(head)?.[1] ?? null;
        const attempt = (relay.attempts.get(messageId ?? '') ?? 0) + 1;
        if (messageId) relay.attempts.set(messageId, attempt);
        const answer = relay.data(messageId, attempt);
        const receipt = (outcome: Receipt['outcome']) =>
          relay.receipts.push({
            rowId: messageId?.endsWith(`@${MESSAGE_ID_DOMAIN}`) ? messageId.split('@')[0]! : null,
            messageId,
            envelopeFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            envelopeTo: session.envelope.rcptTo.map((r) => r.address),
            outcome,
            at: Date.now(),
          });
        if (answer === 'drop') {
          // The whole message arrived, then the line goes dead before any reply: the sender can't know.
          receipt('dropped');
          return dropConnection(server, session);
        }
        // The whole message arrived and no reply ever comes (until the sender gives up on the line).
        if (answer === 'hang') return void receipt('dropped');
        setTimeout(() => {
          if (answer === 'accept') {
            receipt('accepted');
            cb(null, `2.0.0 Ok: queued as ${randomBytes(4).toString('hex')}`);
          } else {
            receipt('refused');
            cb(Object.assign(new Error(answer.message), { responseCode: answer.code }));
          }
        }, relay.latencyMs);
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as { port: number }).port;
  return Object.assign(relay, {
    url: `smtp://127.0.0.1:${port}?tls=off`,
    down: () =>
      new Promise<void>((resolve) => {
        server.server.close(() => resolve());
        for (const c of connectionsOf(server)) c._socket?.destroy();
      }),
    up: () => new Promise<void>((resolve) => server.server.listen(port, '127.0.0.1', () => resolve())),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of connectionsOf(server)) c._socket?.destroy();
        server.close(() => resolve());
      }),
  });
}

type Connection = { session: SMTPServerSession; _socket?: { destroy(): void } };
const connectionsOf = (server: SMTPServer) => [...(((server as unknown as { connections?: Set<Connection> }).connections) ?? [])];

function dropConnection(server: SMTPServer, session: SMTPServerSession): void {
  for (const c of connectionsOf(server)) if (c.session === session || c.session.id === session.id) c._socket?.destroy();
}

// ---------------------------------------------------------------------------------------------------
// Worker processes: `nurture worker`, exactly as an operator runs it.

export interface WorkerEnv {
  databaseUrl: string;
  redisUrl: string;
  smtpUrl: string;
  prefix: string;
  concurrency?: number;
  reconcileEverySeconds?: number;
  sendingTimeoutSeconds?: number;
  configDir?: string;
  /** `nurture worker` unless told otherwise (`start`: API and workers in one process). */
  command?: 'worker' | 'start';
  /** More variables (DRAIN_TIMEOUT_SECONDS, PORT, NURTURE_DATA_DIR, …). */
  env?: Record<string, string>;
}

export interface WorkerProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  stdout: () => string;
  stderr: () => string;
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  alive(): boolean;
}

export function spawnWorker(name: string, e: WorkerEnv): WorkerProcess {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'test',
    DATABASE_URL: e.databaseUrl,
    REDIS_URL: e.redisUrl,
    SMTP_URL: e.smtpUrl,
    QUEUE_PREFIX: e.prefix,
    NURTURE_CONFIG_DIR: e.configDir ?? CONFIG_DIR,
    NURTURE_TEMPLATES_DIR: path.join(REPO, 'templates'),
    // Its own data dir: no dev secrets shared with a developer's `npm start`.
    NURTURE_DATA_DIR: mkdtempSync(path.join(inject('chaosTmpDir'), `${name}-`)),
    WEBHOOK_SECRET: SECRETS.webhookSecret,
    TRACKING_SECRET: SECRETS.trackingSecret,
    MESSAGE_ID_DOMAIN,
    PUBLIC_URL: 'http://127.0.0.1:9',
    WORKER_CONCURRENCY: String(e.concurrency ?? 10),
    RECONCILE_EVERY_SECONDS: String(e.reconcileEverySeconds ?? 2),
    SENDING_TIMEOUT_SECONDS: String(e.sendingTimeoutSeconds ?? 4),
    ...e.env,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', e.command ?? 'worker'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null; at: number } | null = null;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve((exitInfo = { code, signal, at: Date.now() }))),
  );
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      if (out.includes('nurture is running')) resolve();
    });
    void exited.then((x) => reject(new Error(`worker ${name} exited before it was ready (${x.code ?? x.signal}):\n${err}`)));
  });
  ready.catch(() => {});
  child.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
  return { name, child, pid: child.pid!, stdout: () => out, stderr: () => err, ready, exited, alive: () => exitInfo === null };
}

/** Stops a worker we started (by its pid) and waits for it to be gone. */
export async function stopWorker(w: WorkerProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (w.alive()) w.child.kill(signal);
  const timer = setTimeout(() => w.alive() && w.child.kill('SIGKILL'), 15_000);
  await w.exited;
  clearTimeout(timer);
}

/** Lines a healthy worker never writes: crashes, unhandled rejections, stack traces. */
export function troubleIn(stderr: string): string[] {
  return stderr
    .split('\n')
    // A job that failed and will be retried is logged by the worker on purpose ("[worker step] job … failed
    // (attempt n): …"): that is the handled path, not trouble.
    .filter((l) => !/^\[worker \w+\] job \S+ failed \(attempt \d+\)/.test(l))
    .filter((l) => /unhandled|uncaught|^\s*at\s|Error:|ECONNREFUSED|terminating connection/i.test(l))
    .slice(0, 20);
}

// ---------------------------------------------------------------------------------------------------
// The tally: what reached the relay, held against the rows in Postgres.

export interface MessageRow {
  id: string;
  enrollment_id: string;
  lead_id: string;
  sequence_id: string;
  step_id: string;
  status: string;
  attempts: number;
}

export interface Tally {
  fault: string;
  expected: number;
  /** Distinct messages the relay accepted with a 250. */
  delivered: number;
  /** Extra copies: the same Message-ID, or the same lead + step, received more than once (250 or dropped). */
  duplicates: number;
  /** Expected lead+step pairs with no row that is sent, bounced (as expected) or uncertain; and `sent` rows the relay never accepted. */
  lost: number;
  uncertain: number;
  bounced: number;
  /** Received by the relay but matching no row: should never happen. */
  strangers: number;
  rows: MessageRow[];
  statuses: Record<string, number>;
}

/**
 * `expected` lists the (lead, sequence, step) pairs that should each end sent (or uncertain, or bounced
 * where `bounceOk` says so).
 */
export async function tally(
  fault: string,
  sql: postgres.Sql,
  relay: Relay,
  expected: { leadId: string; sequenceId: string; stepId: string }[],
  bounceOk: (leadId: string) => boolean = () => false,
): Promise<Tally> {
  const rows = await sql<MessageRow[]>`select id, enrollment_id, lead_id, sequence_id, step_id, status, attempts from messages`;
  const byId = new Map(rows.map((r) => [r.id, r]));
  const arrived = relay.receipts.filter((r) => r.outcome !== 'refused');
  const copiesById = new Map<string, number>();
  const copiesByPair = new Map<string, number>();
  let strangers = 0;
  for (const r of arrived) {
    const row = r.rowId ? byId.get(r.rowId) : undefined;
    if (!row) {
      strangers++;
      continue;
    }
    copiesById.set(row.id, (copiesById.get(row.id) ?? 0) + 1);
    const pair = `${row.lead_id}/${row.sequence_id}/${row.step_id}`;
    copiesByPair.set(pair, (copiesByPair.get(pair) ?? 0) + 1);
  }
  const extra = (m: Map<string, number>) => [...m.values()].reduce((s, n) => s + Math.max(0, n - 1), 0);
  const duplicates = Math.max(extra(copiesById), extra(copiesByPair));
  const accepted = new Set(relay.receipts.filter((r) => r.outcome === 'accepted' && r.rowId).map((r) => r.rowId!));

  const outcomeByPair = new Map<string, MessageRow>();
  for (const r of rows) outcomeByPair.set(`${r.lead_id}/${r.sequence_id}/${r.step_id}`, r);
  let lost = 0;
  for (const e of expected) {
    const row = outcomeByPair.get(`${e.leadId}/${e.sequenceId}/${e.stepId}`);
    const ok = row && (row.status === 'sent' || row.status === 'uncertain' || (row.status === 'bounced' && bounceOk(e.leadId)));
    if (!ok) lost++;
  }
  // A row that says sent must be one the relay accepted (listmonk 1518: "sent" although refused).
  lost += rows.filter((r) => r.status === 'sent' && !accepted.has(r.id)).length;

  const statuses: Record<string, number> = {};
  for (const r of rows) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  return {
    fault,
    expected: expected.length,
    delivered: accepted.size,
    duplicates,
    lost,
    uncertain: statuses.uncertain ?? 0,
    bounced: statuses.bounced ?? 0,
    strangers,
    rows,
    statuses,
  };
}

/** Every lead × every email step of a sequence: what a fan-out owes. */
export const owed = (leadIds: string[], sequenceId: string, stepIds: string[]) =>
  leadIds.flatMap((leadId) => stepIds.map((stepId) => ({ leadId, sequenceId, stepId })));

/** Rows not yet at rest: still queued or sending. */
export async function unsettled(sql: postgres.Sql): Promise<number> {
  const [r] = await sql<{ n: number }[]>`select count(*)::int as n from messages where status in ('queued', 'sending')`;
  return r!.n;
}

/**
 * Everything at rest: at least `rows` message rows, none queued or sending, no enrollment active, and no
 * job in Redis that could still send. Query errors (a database restarting) read as "not yet".
 */
export async function settled(s: Pick<Scene, 'db' | 'jobCount'>, rows: number): Promise<boolean> {
  try {
    const [{ n }] = (await s.db.sql<{ n: number }[]>`select count(*)::int as n from messages`) as unknown as [{ n: number }];
    if (n < rows || (await unsettled(s.db.sql)) > 0 || (await activeEnrollments(s.db.sql)) > 0) return false;
    for (const state of ['active', 'waiting', 'delayed', 'prioritized'] as const) if ((await s.jobCount(state)) > 0) return false;
    return true;
  } catch {
    return false;
  }
}

/** What the system looks like now, for a failure message: rows, enrollments, queues, the reconcile schedule. */
export async function snapshot(s: Pick<Scene, 'db' | 'ctx'> & Partial<Pick<Scene, 'workers'>>): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const w of s.workers ?? []) out[`worker ${w.name}`] = { alive: w.alive(), stderrTail: w.stderr().slice(-1500) };
  const safely = async (key: string, f: () => Promise<unknown>) => {
    out[key] = await f().catch((e: unknown) => `error: ${e instanceof Error ? e.message : String(e)}`);
  };
  await safely('messages', async () => Object.fromEntries((await s.db.sql<{ status: string; n: number }[]>`select status, count(*)::int as n from messages group by status`).map((r) => [r.status, r.n])));
  await safely('enrollments', async () => Object.fromEntries((await s.db.sql<{ k: string; n: number }[]>`select state || case when state = 'active' and next_due_at <= now() then ' (overdue)' else '' end as k, count(*)::int as n from enrollments group by 1`).map((r) => [r.k, r.n])));
  for (const name of ['step', 'send', 'fanout', 'maintenance'] as const) await safely(`queue ${name}`, () => s.ctx.queues[name].getJobCounts());
  await safely('reconcile schedulers', async () => (await s.ctx.queues.maintenance.getJobSchedulers()).map((j) => ({ key: j.key, every: j.every, next: j.next })));
  return out;
}

/** waitFor, but a timeout says what the system looked like. */
export async function waitForOrExplain(s: Pick<Scene, 'db' | 'ctx'> & Partial<Pick<Scene, 'workers'>>, what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs = 250): Promise<void> {
  try {
    await waitFor(what, check, timeoutMs, everyMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nstate: ${JSON.stringify(await snapshot(s), null, 2)}`);
  }
}

/** Rows in one status. */
export async function countStatus(sql: postgres.Sql, status: string): Promise<number> {
  const [r] = await sql<{ n: number }[]>`select count(*)::int as n from messages where status = ${status}`;
  return r!.n;
}

/** Active enrollments: work Postgres says is still owed. */
export async function activeEnrollments(sql: postgres.Sql): Promise<number> {
  const [r] = await sql<{ n: number }[]>`select count(*)::int as n from enrollments where state = 'active'`;
  return r!.n;
}

// ---------------------------------------------------------------------------------------------------
// Results: one row per fault, gathered by the suite's global setup into a table.

export function recordResult(order: number, t: Tally, note = ''): void {
  const dir = inject('chaosTmpDir');
  const row = { order, fault: t.fault, expected: t.expected, delivered: t.delivered, duplicates: t.duplicates, lost: t.lost, uncertain: t.uncertain, note };
  appendFileSync(path.join(dir, 'results.jsonl'), `${JSON.stringify(row)}\n`);
  console.log(`[chaos] ${t.fault}: ${JSON.stringify({ ...row, statuses: t.statuses, strangers: t.strangers })}`);
}

/** A temp dir the Postgres system user can walk into when we run as root (see src/dev/postgres.ts). */
export async function traversableTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(inject('chaosTmpDir'), prefix));
  await chmod(dir, 0o711);
  return dir;
}

// ---------------------------------------------------------------------------------------------------
// A scene: everything one fault needs, torn down in reverse.

export interface Scene {
  db: FreshDatabase;
  relay: Relay;
  ctx: Context;
  prefix: string;
  redisUrl: string;
  workers: WorkerProcess[];
  /** Starts a `nurture worker` process against this scene's services and waits until it is ready. */
  worker(name: string, overrides?: Partial<WorkerEnv>): Promise<WorkerProcess>;
  /** Counts of the scene's BullMQ queues in one state, summed over step, send, fanout. */
  jobCount(state: 'active' | 'waiting' | 'delayed' | 'failed' | 'completed' | 'prioritized' | 'waiting-children'): Promise<number>;
  close(): Promise<void>;
}

export async function startScene(o: { serverUrl?: string; redisUrl?: string; latencyMs?: number; sendingTimeoutSeconds?: number; configDir?: string } = {}): Promise<Scene> {
  const db = await freshDatabase(o.serverUrl ?? inject('databaseUrl'));
  const redisUrl = o.redisUrl ?? inject('redisUrl');
  const prefix = queuePrefix();
  const relay = await startRelay({ latencyMs: o.latencyMs ?? 0 });
  const ctx = await testContext({ databaseUrl: db.url, redisUrl, prefix, sendingTimeoutSeconds: o.sendingTimeoutSeconds ?? 4, ...(o.configDir ? { configDir: o.configDir } : {}) });
  const workers: WorkerProcess[] = [];
  return {
    db,
    relay,
    ctx,
    prefix,
    redisUrl,
    workers,
    worker: async (name, overrides = {}) => {
      const w = spawnWorker(name, { databaseUrl: db.url, redisUrl, smtpUrl: relay.url, prefix, ...(o.configDir ? { configDir: o.configDir } : {}), ...overrides });
      workers.push(w);
      await w.ready;
      return w;
    },
    jobCount: async (state) => {
      let n = 0;
      for (const q of [ctx.queues.step, ctx.queues.send, ctx.queues.fanout]) n += (await q.getJobCounts(state))[state] ?? 0;
      return n;
    },
    close: async () => {
      await Promise.all(workers.map((w) => stopWorker(w)));
      await closeContext(ctx).catch(() => {});
      await relay.close();
      const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
      const keys = await redis.keys(`${prefix}:*`).catch(() => []);
      if (keys.length) await redis.del(...keys).catch(() => {});
      redis.disconnect();
      await db.drop();
    },
  };
}
