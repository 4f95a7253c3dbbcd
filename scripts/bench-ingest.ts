// Ingestion benchmark: tracking hits per second through the real HTTP endpoint into Postgres,
// micro-batched (the default), beside what a user would write by hand in the same run: a plain Node
// handler that verifies the token, looks the message up and inserts one row per hit.
//   npx tsx scripts/bench-ingest.ts [--hits 20000] [--concurrency 64] [--rounds 2] [--naive-pool 20]
//                                   [--events 20000] [--batch 500] [--webhook-concurrency 8]
// Uses DATABASE_URL / REDIS_URL (default: the local ones on 5432 / 6379); creates and drops its own database.
//
// What bounds each side is measured in the same run, so the ratio can be read:
// - the HTTP ceiling: a handler that answers the pixel and touches nothing, with the same load generator;
// - the load generator runs on its own thread (a worker), so it does not share the server's event loop;
// - the ingestion stage alone, without HTTP: nurture's batches into Postgres (each hit verified,
//   classified, stored with evidence, logged) beside one lookup and one insert per event, 64 at a time.
//
// Provider webhook batches: how engagement really arrives from an email service provider. SendGrid's
// Event Webhook POSTs a JSON array of events (up to about a thousand, typically hundreds, per request),
// signed with ECDSA P-256 over timestamp + body (X-Twilio-Email-Event-Webhook-Signature / -Timestamp).
// `--events` SendGrid events per run (processed, delivered, opens with and without sg_machine_open,
// clicks with the URL, hard and blocked bounces; each carrying the custom argument nurture sets on every
// message, sg_message_id, smtp-id where SendGrid gives it, and the recipient), `--batch` per request,
// `--webhook-concurrency` requests at a time, on a second set of leads and messages of their own, to:
// - nurture: the real server (startHttp), POST /v1/providers/sendgrid/events, the product's signature
//   check, parsers and recordProviderEvents (a constant number of statements per batch, plus one
//   transaction per hard-bounced lead);
// - the handler a user would write: a plain node:http server that verifies the same signature with
//   node:crypto (the key parsed once), parses the array and, per event, awaits one lookup of the message
//   and ONE insert into signals, one event after another (`for (const e of events) await …`), on its own
//   pool of the same size. It skips `processed` (nurture ignores it too) and stores `delivered` as a
//   signals row; nurture stores a delivery as a log line (activity, claimed once in webhook_receipts),
//   not a signal. Both must store every event but the processed ones; each side's rows are counted.
// Every side is run `rounds` times, interleaved, and every hit must be a row in Postgres at the end.
import { createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { closeContext, createContext } from '../src/app.js';
import { makeSettings } from '../src/config/env.js';
import { startHttp } from '../src/http/server.js';
import { trackingUrls, verifyToken } from '../src/mail/tracking.js';
import { DEFAULT_BATCH, TrackingBatcher } from '../src/usecases/trackBatch.js';

const { values } = parseArgs({
  options: {
    hits: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '64' },
    leads: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '2' },
    'naive-pool': { type: 'string', default: '20' },
    // nurture's batching, by default the product's own (DEFAULT_BATCH).
    'max-writes': { type: 'string' },
    'max-wait-ms': { type: 'string' },
    // Provider webhook batches: SendGrid events per run, events per POST, POSTs at a time.
    events: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '500' },
    'webhook-concurrency': { type: 'string', default: '8' },
  },
});
const HITS = Number(values.hits);
const CONCURRENCY = Number(values.concurrency);
const LEADS = Number(values.leads);
const ROUNDS = Number(values.rounds);
const NAIVE_POOL = Number(values['naive-pool']);
const EVENTS = Number(values.events);
const EVENT_BATCH = Number(values.batch);
const WEBHOOK_CONCURRENCY = Number(values['webhook-concurrency']);
const BATCH = { ...DEFAULT_BATCH, ...(values['max-writes'] ? { maxWrites: Number(values['max-writes']) } : {}), ...(values['max-wait-ms'] ? { maxWaitMs: Number(values['max-wait-ms']) } : {}) };
const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const dbName = `nurture_bench_${randomBytes(4).toString('hex')}`;
const admin = postgres(base, { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${dbName}`);
const url = new URL(base);
url.pathname = `/${dbName}`;
const settings = makeSettings({ webhookSecret: `whsec_${randomBytes(24).toString('base64')}`, trackingSecret: randomBytes(24).toString('base64url') });
// SendGrid's Signed Event Webhook: the bench holds the private key and signs as SendGrid does; nurture is
// given the verification key as SendGrid shows it (base64 DER SubjectPublicKeyInfo, SENDGRID_WEBHOOK_PUBLIC_KEY).
const sendgridKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
settings.providers.sendgridPublicKey = sendgridKey.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
const ctx = await createContext({ databaseUrl: url.toString(), redisUrl, smtpUrl: null, configDir: 'config', templatesDir: 'templates', queuePrefix: `bench${randomBytes(3).toString('hex')}`, settings, dbPoolSize: 20 });

// The hand-written baseline's own pool (as large as nurture's unless --naive-pool says otherwise).
const pool = postgres(url.toString(), { max: NAIVE_POOL, onnotice: () => {} });

// The load generator: keep-alive connections on its own thread, each sending its next hit once the
// previous one is answered; every answer must be a 200.
const LOAD = `
const { parentPort, workerData } = require('node:worker_threads');
const { Agent, request } = require('node:http');
const { port, work, concurrency } = workerData;
const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
const latencies = new Float64Array(work.length);
let next = 0, failed = 0;
const t0 = performance.now();
Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < work.length) {
    const i = next++; const h = work[i]; const s = performance.now();
    await new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: h.path, agent, headers: { 'user-agent': h.ua, 'x-forwarded-for': h.ip } }, (res) => {
        res.resume();
        res.on('end', () => { if (res.statusCode !== 200) failed++; resolve(); });
      });
      req.on('error', () => { failed++; resolve(); });
      req.end();
    });
    latencies[i] = performance.now() - s;
  }
})).then(() => {
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  parentPort.postMessage({ seconds, failed, p50: sorted[Math.floor(sorted.length * 0.5)], p99: sorted[Math.floor(sorted.length * 0.99)] });
});`;

type Work = { path: string; ua: string; ip: string }[];
function load(port: number, work: Work): Promise<{ seconds: number; failed: number; p50: number; p99: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(LOAD, { eval: true, workerData: { port, work, concurrency: CONCURRENCY } });
    w.once('message', (m) => void w.terminate().then(() => resolve(m)));
    w.once('error', reject);
  });
}

// The provider's side: keep-alive connections on their own thread, each POSTing its next signed batch
// once the previous one is answered; every answer must be a 200.
const POST_LOAD = `
const { parentPort, workerData } = require('node:worker_threads');
const { Agent, request } = require('node:http');
const { port, path, posts, concurrency } = workerData;
const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
const latencies = new Float64Array(posts.length);
let next = 0, failed = 0, firstFailure = null;
const t0 = performance.now();
Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < posts.length) {
    const i = next++; const p = posts[i]; const s = performance.now();
    await new Promise((resolve) => {
      const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(p.body), ...p.headers };
      const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) { failed++; firstFailure ??= res.statusCode + ' ' + Buffer.concat(chunks).toString('utf8').slice(0, 300); }
          resolve();
        });
      });
      req.on('error', (err) => { failed++; firstFailure ??= String(err); resolve(); });
      req.end(p.body);
    });
    latencies[i] = performance.now() - s;
  }
})).then(() => {
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  parentPort.postMessage({ seconds, failed, firstFailure, p50: sorted[Math.floor(sorted.length * 0.5)], p99: sorted[Math.floor(sorted.length * 0.99)] });
});`;

type Post = { body: string; headers: Record<string, string> };
function loadPosts(port: number, path: string, posts: Post[]): Promise<{ seconds: number; failed: number; firstFailure: string | null; p50: number; p99: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(POST_LOAD, { eval: true, workerData: { port, path, posts, concurrency: WEBHOOK_CONCURRENCY } });
    w.once('message', (m) => void w.terminate().then(() => resolve(m)));
    w.once('error', reject);
  });
}

/** A SendGrid Event Webhook request: the JSON array, signed over timestamp + body with the account's key. */
function signedSendgridPost(events: unknown[]): Post {
  const body = JSON.stringify(events);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = sign('sha256', Buffer.concat([Buffer.from(timestamp), Buffer.from(body)]), sendgridKey.privateKey).toString('base64');
  return { body, headers: { 'x-twilio-email-event-webhook-signature': signature, 'x-twilio-email-event-webhook-timestamp': timestamp } };
}

const count = async () => Number(((await ctx.db.execute(sql`select count(*)::int as n from signals`)) as unknown as { n: number }[])[0]!.n);
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const APPLE = 'Mozilla/5.0';
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

/** The hand-written baseline, per event: verify, one lookup, one insert (agent and address kept as evidence). */
async function naiveHit(token: string, ua: string | null, ip: string): Promise<boolean> {
  const id = verifyToken(settings.trackingSecret, 'track', token);
  if (!id) return false;
  const [m] = await pool`select id, lead_id from messages where id = ${id}`;
  if (!m) return false;
  await pool`insert into signals (source_id, lead_id, message_id, kind, human, reason, occurred_at, evidence, settled_at)
    values (${`plain-${id}-${ip}-${Date.now()}-${Math.random()}`}, ${m.lead_id}, ${m.id}, 'open', ${ua !== APPLE}, 'plain', now(), ${pool.json({ userAgent: ua, ip })}, now())`;
  return true;
}

/**
 * The hand-written SendGrid handler a user would write, per request: verify the signature (node:crypto,
 * the verification key parsed once at start), parse the array, then for each event one lookup of the
 * message (by the custom argument) and ONE insert into signals, awaited one after another. `processed`
 * is skipped (nurture ignores it too); a delivery is stored as a signals row of its own kind.
 */
const sendgridVerifyKey = createPublicKey({ key: Buffer.from(settings.providers.sendgridPublicKey!, 'base64'), format: 'der', type: 'spki' });
type SendgridEvent = { event?: string; sg_event_id?: string; nurture_message?: string; timestamp?: number; sg_machine_open?: boolean };
async function naiveSendgridBatch(body: Buffer, signature: string | undefined, timestamp: string | undefined): Promise<number> {
  if (!signature || !timestamp || !(Math.abs(Date.now() / 1000 - Number(timestamp)) <= 600)) return 401;
  if (!verify('sha256', Buffer.concat([Buffer.from(timestamp), body]), sendgridVerifyKey, Buffer.from(signature, 'base64'))) return 401;
  const events = JSON.parse(body.toString('utf8')) as SendgridEvent[];
  for (const e of events) {
    if (e.event === 'processed') continue;
    const [m] = await pool`select id, lead_id from messages where id = ${String(e.nurture_message)}`;
    if (!m) continue;
    const human = e.event === 'click' || (e.event === 'open' && e.sg_machine_open !== true);
    await pool`insert into signals (source_id, lead_id, message_id, kind, human, reason, occurred_at, evidence, settled_at)
      values (${`plain-sendgrid-${e.sg_event_id}`}, ${m.lead_id}, ${m.id}, ${String(e.event)}, ${human}, 'plain', ${new Date(Number(e.timestamp) * 1000)}, ${pool.json(e as postgres.JSONValue)}, now())
      on conflict (source_id) do nothing`;
  }
  return 200;
}

type Side = 'ceiling' | 'naive' | 'nurture' | 'backlog';
type Result = { label: string; side: Side; stage: boolean; human: boolean; round: number; hits: number; stored: number; seconds: number; perSecond: number; p50: number; p99: number; pgMsPerK: number; nodeMsPerK: number };

// CPU time, which other work on a shared machine does not inflate the way it does wall time: of the
// Postgres backends serving this benchmark's database, and of this process's main thread (the server;
// the load generator has its own thread). In milliseconds, from /proc (Linux; NaN elsewhere).
const TICK_MS = 10;
function cpuOfStat(path: string): number {
  const fields = readFileSync(path, 'utf8').replace(/^.*\) /s, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}
function postgresCpuMs(): number {
  try {
    let ms = 0;
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(` ${dbName} `)) ms += cpuOfStat(`/proc/${pid}/stat`);
      } catch {
        // gone meanwhile
      }
    }
    return ms;
  } catch {
    return Number.NaN;
  }
}
function serverThreadCpuMs(): number {
  try {
    return cpuOfStat(`/proc/self/task/${process.pid}/stat`);
  } catch {
    return Number.NaN;
  }
}
let round = 0;
async function measured<T extends { seconds: number }>(work: () => Promise<T>): Promise<T & { pgMs: number; nodeMs: number }> {
  const pg0 = postgresCpuMs();
  const node0 = serverThreadCpuMs();
  const r = await work();
  return { ...r, pgMs: postgresCpuMs() - pg0, nodeMs: serverThreadCpuMs() - node0 };
}

try {
  // One account, LEADS leads each with one sent message: what a newsletter's audience looks like.
  await ctx.db.execute(sql`insert into accounts (key, name) values ('bench.test', 'Bench Co')`);
  await ctx.db.execute(sql`insert into leads (account_id, email, first_name, persona, stage)
    select (select id from accounts limit 1), 'lead' || g || '@bench.test', 'Lead' || g, 'champion', 'awareness' from generate_series(1, ${LEADS}) g`);
  await ctx.db.execute(sql`insert into enrollments (lead_id, sequence_id, sequence_version, state, stage_entered_at)
    select id, 'awareness-benchmark', 'bench', 'completed', now() from leads`);
  await ctx.db.execute(sql`insert into messages (enrollment_id, lead_id, sequence_id, step_id, status, message_id, template_name, to_address, sent_at, links)
    select e.id, e.lead_id, 'awareness-benchmark', 'benchmark', 'sent', gen_random_uuid() || '@bench.test', 'value-benchmark', l.email, now() - interval '1 hour',
      '[{"id":"guide","url":"https://handrail.example/guide","tag":"value:guide"}]'::jsonb
    from enrollments e join leads l on l.id = e.lead_id`);
  const ids = (await ctx.db.execute(sql`select id from messages order by id`)) as unknown as { id: string }[];
  const pathOf = new Map(ids.map(({ id }) => [id, new URL(trackingUrls('http://x', settings.trackingSecret, id).pixel).pathname]));

  // Most hits in a newsletter's first minutes are machines (Apple's proxy, gateways); some are people.
  // Each run uses its own addresses, so no hit repeats an earlier one (each is a new signal).
  let runNo = 0;
  const hits = (humanEvery: number): Work => {
    const r = ++runNo;
    return Array.from({ length: HITS }, (_, i) => {
      const id = ids[i % ids.length]!.id;
      const human = humanEvery > 0 && i % humanEvery === 0;
      return { path: pathOf.get(id)!, ua: human ? CHROME : APPLE, ip: `${10 + (r >> 8)}.${r & 255}.${(i >> 8) & 255}.${i & 255}` };
    });
  };

  // The provider section's own audience: LEADS more leads, each with one message sent through SendGrid's
  // relay (whose 250 reply gave the provider's message id, stored at send time). Its hard bounces and
  // clicks never touch the pixel sections' leads and messages.
  await ctx.db.execute(sql`insert into leads (account_id, email, first_name, persona, stage)
    select (select id from accounts limit 1), 'esp' || g || '@bench.test', 'Esp' || g, 'champion', 'awareness' from generate_series(1, ${LEADS}) g`);
  await ctx.db.execute(sql`insert into enrollments (lead_id, sequence_id, sequence_version, state, stage_entered_at)
    select id, 'esp-benchmark', 'bench', 'completed', now() from leads where email like 'esp%@bench.test'`);
  await ctx.db.execute(sql`insert into messages (enrollment_id, lead_id, sequence_id, step_id, status, message_id, provider_message_id, template_name, to_address, sent_at, links)
    select e.id, e.lead_id, 'esp-benchmark', 'benchmark', 'sent', gen_random_uuid() || '@bench.test', substr(md5(random()::text), 1, 22), 'value-benchmark', l.email, now() - interval '1 hour',
      '[{"id":"guide","url":"https://handrail.example/guide","tag":"value:guide"}]'::jsonb
    from enrollments e join leads l on l.id = e.lead_id where e.sequence_id = 'esp-benchmark'`);
  const espMessages = (await ctx.db.execute(
    sql`select id, to_address as email, provider_message_id as key, message_id as "messageId" from messages where sequence_id = 'esp-benchmark' order by id`,
  )) as unknown as { id: string; email: string; key: string; messageId: string }[];

  // A run's SendGrid events, in the Event Webhook's shape: a newsletter's processing, deliveries, opens
  // (60% Apple's proxy, flagged sg_machine_open), clicks on its link, and 1% hard and 1% blocked bounces.
  // Each run has its own sg_event_ids, so nothing is deduplicated away.
  type EspKind = 'processed' | 'delivered' | 'open' | 'click' | 'bounce';
  let espRunNo = 0;
  function sendgridEvents(): { events: Record<string, unknown>[]; kinds: Record<EspKind, number> } {
    const r = ++espRunNo;
    let seed = (r * 2654435761) >>> 0;
    const rand = () => {
      // mulberry32: the same mix every time the bench runs, a different one each run.
      seed = (seed + 0x6d2b79f5) >>> 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const now = Math.floor(Date.now() / 1000);
    const kinds: Record<EspKind, number> = { processed: 0, delivered: 0, open: 0, click: 0, bounce: 0 };
    const events = Array.from({ length: EVENTS }, (_, i) => {
      const m = espMessages[i % espMessages.length]!;
      const x = rand() * 100;
      const kind: EspKind = x < 16 ? 'processed' : x < 40 ? 'delivered' : x < 82 ? 'open' : x < 98 ? 'click' : 'bounce';
      kinds[kind]++;
      const base = {
        email: m.email,
        // SendGrid posts what accumulated over up to 30 seconds.
        timestamp: now - Math.floor(rand() * 30),
        event: kind,
        category: ['nurture', 'awareness'],
        sg_event_id: randomBytes(16).toString('base64url'),
        sg_message_id: `${m.key}.recvd-5f8b7c6d4-x2kqp-1-${(0x695a1b2c + (i % 4096)).toString(16).toUpperCase()}-${i % 10}.0`,
        // The custom argument nurture sets through X-SMTPAPI unique_args on every message (MESSAGE_ROW_ARG).
        nurture_message: m.id,
      };
      const person = `203.0.${(i >> 8) & 255}.${i & 255}`;
      switch (kind) {
        case 'processed':
          return { ...base, 'smtp-id': `<${m.messageId}>`, send_at: 0 };
        case 'delivered':
          return { ...base, 'smtp-id': `<${m.messageId}>`, response: `250 2.0.0 OK  ${base.timestamp} d75a77b69052e-4f1b2c3d4e5sm${i}qtb.12 - gsmtp`, tls: 1, ip: '149.72.123.24' };
        case 'open': {
          const machine = rand() < 0.6;
          return { ...base, sg_machine_open: machine, useragent: machine ? APPLE : CHROME, ip: machine ? `17.58.${(i >> 8) & 255}.${i & 255}` : person };
        }
        case 'click':
          return { ...base, useragent: CHROME, ip: person, url: 'https://handrail.example/guide', url_offset: { index: 0, type: 'html' } };
        case 'bounce':
          return x >= 99
            ? { ...base, 'smtp-id': `<${m.messageId}>`, reason: "550 5.1.1 The email account that you tried to reach does not exist.", status: '5.1.1', type: 'bounce', bounce_classification: 'Invalid Address', tls: 1 }
            : { ...base, 'smtp-id': `<${m.messageId}>`, reason: '554 5.7.1 Service unavailable; Client host [149.72.0.1] blocked using Spamhaus', status: '5.7.1', type: 'blocked', bounce_classification: 'Reputation' };
      }
    });
    return { events, kinds };
  }
  const deliveredNotes = async () => Number(((await ctx.db.execute(sql`select count(*)::int as n from activity where kind = 'esp_delivered'`)) as unknown as { n: number }[])[0]!.n);

  async function plainWebhookServer(): Promise<{ url: string; close(): Promise<void> }> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const header = (name: string) => {
          const v = req.headers[name];
          return Array.isArray(v) ? v[0] : v;
        };
        naiveSendgridBatch(Buffer.concat(chunks), header('x-twilio-email-event-webhook-signature'), header('x-twilio-email-event-webhook-timestamp')).then(
          (status) => res.writeHead(status).end(),
          (err) => {
            console.error(err);
            res.writeHead(500).end();
          },
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }

  type EspResult = {
    label: string;
    side: 'naive' | 'nurture';
    round: number;
    events: number;
    requests: number;
    kinds: Record<EspKind, number>;
    signals: number;
    notes: number;
    expectedSignals: number;
    expectedNotes: number;
    seconds: number;
    perSecond: number;
    requestsPerSecond: number;
    p50: number;
    p99: number;
    pgMsPerK: number;
    nodeMsPerK: number;
  };
  async function viaWebhook(side: 'naive' | 'nurture'): Promise<EspResult> {
    const http = side === 'nurture' ? await startHttp(ctx, { host: '127.0.0.1', port: 0, batch: BATCH }) : await plainWebhookServer();
    const { events, kinds } = sendgridEvents();
    const posts: Post[] = [];
    for (let i = 0; i < events.length; i += EVENT_BATCH) posts.push(signedSendgridPost(events.slice(i, i + EVENT_BATCH)));
    const signals0 = await count();
    const notes0 = await deliveredNotes();
    const r = await measured(() => loadPosts(Number(new URL(http.url).port), '/v1/providers/sendgrid/events', posts));
    await http.close();
    const signals = (await count()) - signals0;
    const notes = (await deliveredNotes()) - notes0;
    if (r.failed) throw new Error(`${side} webhook: ${r.failed} of ${posts.length} requests failed, the first: ${r.firstFailure}`);
    const engagement = kinds.open + kinds.click + kinds.bounce;
    const label =
      side === 'naive'
        ? `hand-written handler: verify, then per event one lookup + one insert, awaited in turn (pool ${NAIVE_POOL}); stores delivered as a signal, skips processed`
        : 'nurture: POST /v1/providers/sendgrid/events, verified, matched, classified, stored with evidence and logged; delivered as a log line, processed ignored';
    return {
      label,
      side,
      round,
      events: events.length,
      requests: posts.length,
      kinds,
      signals,
      notes,
      expectedSignals: side === 'naive' ? engagement + kinds.delivered : engagement,
      expectedNotes: side === 'naive' ? 0 : kinds.delivered,
      seconds: r.seconds,
      perSecond: events.length / r.seconds,
      requestsPerSecond: posts.length / r.seconds,
      p50: r.p50,
      p99: r.p99,
      pgMsPerK: (r.pgMs * 1000) / events.length,
      nodeMsPerK: (r.nodeMs * 1000) / events.length,
    };
  }

  async function plainServer(naive: boolean): Promise<{ url: string; close(): Promise<void> }> {
    const server = createServer((req, res) => {
      if (!naive) return void res.writeHead(200, { 'content-type': 'image/gif' }).end(PIXEL);
      const token = /^\/t\/o\/([\w.-]+)\.gif$/.exec(req.url ?? '')?.[1] ?? '';
      const ua = req.headers['user-agent'] ?? null;
      const ip = String(req.headers['x-forwarded-for'] ?? req.socket.remoteAddress ?? '');
      naiveHit(token, ua, ip).then(
        () => res.writeHead(200, { 'content-type': 'image/gif' }).end(PIXEL),
        () => res.writeHead(500).end(),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }

  async function viaHttp(side: Side, human: boolean): Promise<Result> {
    const http = side === 'nurture' ? await startHttp(ctx, { host: '127.0.0.1', port: 0, batch: BATCH }) : await plainServer(side === 'naive');
    const work = hits(human ? 5 : 0);
    const before = await count();
    const r = await measured(() => load(Number(new URL(http.url).port), work));
    await http.close();
    const stored = (await count()) - before;
    if (r.failed) throw new Error(`${side}: ${r.failed} requests failed`);
    const label = side === 'ceiling' ? 'HTTP ceiling: a handler that answers the pixel and stores nothing' : side === 'naive' ? `hand-written handler: one lookup + one insert per hit (pool ${NAIVE_POOL}), no classification, no log` : 'nurture: micro-batched, each hit verified, classified, stored with evidence and logged';
    return { label, side, stage: false, human, round, hits: work.length, stored: side === 'ceiling' ? work.length : stored, seconds: r.seconds, perSecond: work.length / r.seconds, p50: r.p50, p99: r.p99, pgMsPerK: (r.pgMs * 1000) / work.length, nodeMsPerK: (r.nodeMs * 1000) / work.length };
  }

  /** The ingestion stage alone: no HTTP, the same hits handed to the use case (or the naive code) directly. */
  async function stageAlone(side: 'naive' | 'nurture' | 'backlog', human: boolean): Promise<Result> {
    const work = hits(human ? 5 : 0).map((h) => ({ token: /^\/t\/o\/([\w.-]+)\.gif$/.exec(h.path)![1]!, ua: h.ua, ip: h.ip }));
    const before = await count();
    const latencies: number[] = [];
    const pg0 = postgresCpuMs();
    const node0 = serverThreadCpuMs();
    const t0 = performance.now();
    // The same arrivals on both sides: CONCURRENCY callers, each handing over its next hit once the
    // previous one is stored. nurture's callers go through the product's batcher. A backlog (hits that
    // queued up meanwhile) hands them all over at once: the batcher writes them in its largest batches.
    const batcher = new TrackingBatcher(ctx, BATCH);
    let next = 0;
    await Promise.all(
      Array.from({ length: side === 'backlog' ? work.length : CONCURRENCY }, async () => {
        while (next < work.length) {
          const h = work[next++]!;
          const s = performance.now();
          if (side === 'naive') await naiveHit(h.token, h.ua, h.ip);
          else await batcher.open({ token: h.token, userAgent: h.ua, ip: h.ip, method: 'GET', headers: {} });
          latencies.push(performance.now() - s);
        }
      }),
    );
    await batcher.drain();
    const seconds = (performance.now() - t0) / 1000;
    const pgMs = postgresCpuMs() - pg0;
    const nodeMs = serverThreadCpuMs() - node0;
    const stored = (await count()) - before;
    latencies.sort((a, b) => a - b);
    const label =
      side === 'naive'
        ? `stage alone: one lookup + one insert per event, ${CONCURRENCY} callers (pool ${NAIVE_POOL})`
        : side === 'nurture'
          ? `stage alone: nurture's batcher, ${CONCURRENCY} callers (verified, classified, stored, logged)`
          : `stage alone: nurture's batcher, a backlog of ${work.length} hits handed over at once (batches of ${BATCH.maxBatch}; latency = time to store the backlog)`;
    return { label, side, stage: true, human, round, hits: work.length, stored, seconds, perSecond: work.length / seconds, p50: latencies[Math.floor(latencies.length * 0.5)]!, p99: latencies[Math.floor(latencies.length * 0.99)]!, pgMsPerK: (pgMs * 1000) / work.length, nodeMsPerK: (nodeMs * 1000) / work.length };
  }

  // The Apple proxy IPs are trusted as-is only from a configured proxy: the bench sends them from loopback.
  settings.trustedProxies = ['127.0.0.1'];
  const results: Result[] = [];
  const espResults: EspResult[] = [];
  for (round = 0; round < ROUNDS; round++) {
    for (const human of [false, true]) {
      results.push(await viaHttp('ceiling', human));
      results.push(await viaHttp('naive', human));
      results.push(await viaHttp('nurture', human));
    }
    for (const human of [false, true]) {
      results.push(await stageAlone('naive', human));
      results.push(await stageAlone('nurture', human));
      results.push(await stageAlone('backlog', human));
    }
    if (EVENTS > 0) {
      espResults.push(await viaWebhook('naive'));
      espResults.push(await viaWebhook('nurture'));
    }
  }

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`\nIngestion: ${HITS} pixel hits per run over ${CONCURRENCY} keep-alive connections (load generator on its own thread), ${LEADS} leads, ${ROUNDS} interleaved rounds`);
  console.log(`nurture's batches: up to ${BATCH.maxBatch} hits, ${BATCH.maxWrites} written at once (opens only), ${BATCH.maxWaitMs} ms wait when idle`);
  console.log(`machine: ${cpu}, ${os.cpus().length} cores, Node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
  console.log('| hits | approach | round | hits | stored | seconds | hits/s | p50 ms | p99 ms | Postgres CPU ms / 1,000 hits | server thread CPU ms / 1,000 hits |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(`| ${r.human ? '80% machine, 20% human' : 'machine flood'} | ${r.label} | ${r.round + 1} | ${r.hits} | ${r.stored} | ${r.seconds.toFixed(2)} | ${Math.round(r.perSecond)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${Math.round(r.pgMsPerK)} | ${Math.round(r.nodeMsPerK)} |`);
  }
  const of = (stage: boolean, human: boolean, side: Side) => results.filter((r) => r.stage === stage && r.human === human && r.side === side);
  const span = (xs: number[], digits = 0) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
  // Each round's nurture run against the naive run just before it: the machine's load changes between rounds.
  const ratio = (stage: boolean, human: boolean, side: Side = 'nurture') => {
    const n = of(stage, human, side);
    const b = of(stage, human, 'naive');
    const paired = n.map((r, i) => r.perSecond / b[i]!.perSecond);
    const cpu = n.map((r, i) => b[i]!.pgMsPerK / r.pgMsPerK);
    return `${span(paired, 1)}× hits/s in the same round (nurture ${span(n.map((r) => r.perSecond))} hits/s, naive ${span(b.map((r) => r.perSecond))}${stage ? '' : `, HTTP ceiling ${span(of(stage, human, 'ceiling').map((r) => r.perSecond))} req/s`}); Postgres CPU per hit ${span(cpu, 1)}× less (nurture ${span(n.map((r) => r.pgMsPerK / 1000), 3)} ms, naive ${span(b.map((r) => r.pgMsPerK / 1000), 3)} ms)`;
  };
  console.log('\nnurture / naive, through HTTP:');
  console.log(`  machine flood ${ratio(false, false)}`);
  console.log(`  20% human     ${ratio(false, true)}`);
  console.log('nurture / naive, ingestion stage alone (no HTTP):');
  console.log(`  machine flood ${ratio(true, false)}`);
  console.log(`  20% human     ${ratio(true, true)}`);
  console.log('nurture with a backlog (all hits handed over at once, batches of up to 1,000) / naive with 64 callers, ingestion stage alone:');
  console.log(`  machine flood ${ratio(true, false, 'backlog')}`);
  console.log(`  20% human     ${ratio(true, true, 'backlog')}`);

  if (espResults.length) {
    const k = espResults[0]!.kinds;
    const pct = (n: number) => `${Math.round((n * 100) / espResults[0]!.events)}%`;
    console.log(`\nProvider webhook batches: ${EVENTS} SendGrid events per run, ${EVENT_BATCH} per signed POST (${espResults[0]!.requests} requests, ${WEBHOOK_CONCURRENCY} at a time, load generator on its own thread), ${espMessages.length} messages of their own`);
    console.log(`event mix (first run): processed ${pct(k.processed)}, delivered ${pct(k.delivered)}, open ${pct(k.open)} (about 60% flagged sg_machine_open), click ${pct(k.click)}, bounce ${pct(k.bounce)} (half hard, half blocked)`);
    console.log('stored: nurture records opens, clicks and bounces as signals and a delivery as a log line; the hand-written handler stores each delivery, open, click and bounce as a signals row; neither stores processed.\n');
    console.log('| approach | round | events | requests | stored | seconds | events/s | requests/s | p50 ms / request | p99 ms / request | Postgres CPU ms / 1,000 events | server thread CPU ms / 1,000 events |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of espResults) {
      const stored = r.side === 'naive' ? `${r.signals} signals` : `${r.signals} signals + ${r.notes} delivery log lines`;
      console.log(`| ${r.label} | ${r.round + 1} | ${r.events} | ${r.requests} | ${stored} | ${r.seconds.toFixed(2)} | ${Math.round(r.perSecond)} | ${r.requestsPerSecond.toFixed(1)} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${Math.round(r.pgMsPerK)} | ${Math.round(r.nodeMsPerK)} |`);
    }
    const n = espResults.filter((r) => r.side === 'nurture');
    const b = espResults.filter((r) => r.side === 'naive');
    const paired = n.map((r, i) => r.perSecond / b[i]!.perSecond);
    const cpuLess = n.map((r, i) => b[i]!.pgMsPerK / r.pgMsPerK);
    console.log(`\nnurture / naive, SendGrid webhook batches of ${EVENT_BATCH} (events/s over all events posted, processed included):`);
    console.log(
      `  ${span(paired, 1)}× events/s in the same round (per round: ${paired.map((x) => `${x.toFixed(1)}×`).join(', ')}; nurture ${span(n.map((r) => r.perSecond))} events/s, naive ${span(b.map((r) => r.perSecond))}); ` +
        `Postgres CPU per event ${span(cpuLess, 1)}× less (nurture ${span(n.map((r) => r.pgMsPerK / 1000), 3)} ms, naive ${span(b.map((r) => r.pgMsPerK / 1000), 3)} ms)`,
    );
  }
  for (const r of results) if (r.stored !== r.hits) throw new Error(`${r.label}: expected ${r.hits} signals, stored ${r.stored}`);
  for (const r of espResults) {
    if (r.signals !== r.expectedSignals || r.notes !== r.expectedNotes) {
      throw new Error(`${r.label}, round ${r.round + 1}: expected ${r.expectedSignals} signals and ${r.expectedNotes} delivery log lines, stored ${r.signals} and ${r.notes}`);
    }
  }
} finally {
  await pool.end();
  await closeContext(ctx);
  await admin.unsafe(`drop database if exists ${dbName} with (force)`);
  await admin.end();
}
