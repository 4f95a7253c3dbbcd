// Ingestion benchmark: tracking hits per second through the real HTTP endpoint into Postgres,
// micro-batched (the default), beside what a user would write by hand in the same run: a plain Node
// handler that verifies the token, looks the message up and inserts one row per hit.
//   npx tsx scripts/bench-ingest.ts [--hits 20000] [--concurrency 64]
// Uses DATABASE_URL / REDIS_URL (default: the local ones on 5432 / 6379); creates and drops its own database.
import { randomBytes } from 'node:crypto';
import { Agent, createServer, request } from 'node:http';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { closeContext, createContext } from '../src/app.js';
import { makeSettings } from '../src/config/env.js';
import { startHttp } from '../src/http/server.js';
import { trackingUrls, verifyToken } from '../src/mail/tracking.js';

const { values } = parseArgs({ options: { hits: { type: 'string', default: '20000' }, concurrency: { type: 'string', default: '64' }, leads: { type: 'string', default: '2000' } } });
const HITS = Number(values.hits);
const CONCURRENCY = Number(values.concurrency);
const LEADS = Number(values.leads);
const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const dbName = `nurture_bench_${randomBytes(4).toString('hex')}`;
const admin = postgres(base, { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${dbName}`);
const url = new URL(base);
url.pathname = `/${dbName}`;
const settings = makeSettings({ webhookSecret: `whsec_${randomBytes(24).toString('base64')}`, trackingSecret: randomBytes(24).toString('base64url') });
const ctx = await createContext({ databaseUrl: url.toString(), redisUrl, smtpUrl: null, configDir: 'config', templatesDir: 'templates', queuePrefix: `bench${randomBytes(3).toString('hex')}`, settings, dbPoolSize: 20 });

// The hand-written baseline's own pool, as large as nurture's.
const pool = postgres(url.toString(), { max: 20, onnotice: () => {} });
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

  // Most hits in a newsletter's first minutes are machines (Apple's proxy, gateways); some are people.
  const APPLE = 'Mozilla/5.0';
  const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
  const hits = (round: number, humanEvery: number) =>
    Array.from({ length: HITS }, (_, i) => {
      const id = ids[i % ids.length]!.id;
      const human = humanEvery > 0 && i % humanEvery === 0;
      return { path: new URL(trackingUrls('http://x', settings.trackingSecret, id).pixel).pathname, ua: human ? CHROME : APPLE, ip: `17.${round}.${(i >> 8) & 255}.${i & 255}` };
    });

  // The hand-written baseline: per hit, verify, one lookup, one insert (the user agent and address kept
  // as evidence), answer the pixel. No classification, no batching: the least a user would do.
  const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
  async function plainServer(): Promise<{ url: string; close(): Promise<void> }> {
    const server = createServer((req, res) => {
      const token = /^\/t\/o\/([\w.-]+)\.gif$/.exec(req.url ?? '')?.[1] ?? '';
      const id = verifyToken(settings.trackingSecret, 'track', token);
      const ua = req.headers['user-agent'] ?? null;
      const ip = String(req.headers['x-forwarded-for'] ?? req.socket.remoteAddress ?? '');
      (async () => {
        if (!id) return;
        const [m] = await pool`select id, lead_id from messages where id = ${id}`;
        if (!m) return;
        await pool`insert into signals (source_id, lead_id, message_id, kind, human, reason, occurred_at, evidence, settled_at)
          values (${`plain-${id}-${ip}-${Date.now()}-${Math.random()}`}, ${m.lead_id}, ${m.id}, 'open', ${ua !== APPLE}, 'plain', now(), ${pool.json({ userAgent: ua, ip })}, now())`;
      })().then(
        () => res.writeHead(200, { 'content-type': 'image/gif' }).end(PIXEL),
        () => res.writeHead(500).end(),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }

  async function run(label: string, batch: boolean, round: number, humanEvery: number) {
    const http = batch ? await startHttp(ctx, { host: '127.0.0.1', port: 0, batch: { maxBatch: 500, maxWaitMs: 10 } }) : await plainServer();
    const { port } = new URL(http.url);
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const work = hits(round, humanEvery);
    const before = Number(((await ctx.db.execute(sql`select count(*)::int as n from signals`)) as unknown as { n: number }[])[0]!.n);
    const latencies: number[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < work.length) {
          const h = work[next++]!;
          const s = performance.now();
          await new Promise<void>((resolve, reject) => {
            const req = request({ host: '127.0.0.1', port, path: h.path, agent, headers: { 'user-agent': h.ua, 'x-forwarded-for': h.ip } }, (res) => {
              res.resume();
              res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
            });
            req.on('error', reject);
            req.end();
          });
          latencies.push(performance.now() - s);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    await http.close();
    agent.destroy();
    const after = Number(((await ctx.db.execute(sql`select count(*)::int as n from signals`)) as unknown as { n: number }[])[0]!.n);
    latencies.sort((a, b) => a - b);
    return { label, hits: work.length, stored: after - before, seconds, perSecond: work.length / seconds, p50: latencies[Math.floor(latencies.length * 0.5)]!, p99: latencies[Math.floor(latencies.length * 0.99)]! };
  }

  // The Apple proxy IPs are trusted as-is only from a configured proxy: the bench sends them from loopback.
  settings.trustedProxies = ['127.0.0.1'];
  const results = [
    await run('machine flood (Apple proxy prefetch): hand-written handler, one lookup + insert per hit, no classification', false, 1, 0),
    await run('machine flood (Apple proxy prefetch): nurture, micro-batched (500 hits / 10 ms), classified', true, 2, 0),
    await run('80% machine, 20% human: hand-written handler', false, 3, 5),
    await run('80% machine, 20% human: nurture, micro-batched; human hits provisional, one settle job per lead', true, 4, 5),
  ];

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`\nIngestion: ${HITS} pixel hits per run over ${CONCURRENCY} keep-alive connections, ${LEADS} leads`);
  console.log(`machine: ${cpu}, ${os.cpus().length} cores, Node ${process.version}\n`);
  console.log('| approach | hits | stored | seconds | hits/s | p50 ms | p99 ms |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(`| ${r.label} | ${r.hits} | ${r.stored} | ${r.seconds.toFixed(2)} | ${Math.round(r.perSecond)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} |`);
  }
  console.log(`\nbatched / naive: machine flood ${(results[1]!.perSecond / results[0]!.perSecond).toFixed(1)}×, mixed ${(results[3]!.perSecond / results[2]!.perSecond).toFixed(1)}×`);
  for (const r of results) if (r.stored !== HITS) throw new Error(`${r.label}: expected ${HITS} signals, stored ${r.stored}`);
} finally {
  await pool.end();
  await closeContext(ctx);
  await admin.unsafe(`drop database if exists ${dbName} with (force)`);
  await admin.end();
}
