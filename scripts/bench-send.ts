// The end-to-end send path, measured from outside: a segmented fan-out to N leads, sent by real
// `nurture worker` processes (fan-out page → step job → render → MIME → SMTP → `sent` row) to a C SMTP
// sink, beside bare pooled nodemailer sending the same bytes to the same sink in the same run. Prints
// both rates and their ratio, with the machine. Configurations run interleaved, so other load on the
// machine falls on both alike; read the ranges, not one figure. Beside the rates it prints the CPU each
// part used per message (workers, Postgres backends, Redis, sink; bare nodemailer and the sink), which
// the neighbours' load moves much less.
//
// Run:  npx tsx scripts/bench-send.ts [leads=5000] [rounds=2] [workers=1]   (builds dist/ first)
//   env WORKER_CONCURRENCY (default 10), SMTP_POOL_SIZE and DB_POOL_SIZE pass through to the workers,
//   BENCH_WORKER_NODE_ARGS are node flags for the workers alone ("--cpu-prof --cpu-prof-dir=/tmp/prof");
//   the bare side uses the same SMTP pool size. BENCH_DKIM=1 signs both sides with a fresh 2048-bit key.
//   BENCH_LATER=1 sends the email as a follow-up: the sequence first waits 3 s, so each message comes of
//   a wake (the steps due in a second, decided a page at a time, then a send job each), as every email
//   after a sequence's first does. The time is counted from 3 s after the fan-out started, no later than
//   the first follow-up was due: the rate is never flattered by the wait.
//
// The sink is Postfix's `smtp-sink` (installed with apt-get where missing and possible). Where it can't
// be had, an in-process smtp-server sink stands in and every line says so: it runs on the same cores in
// JavaScript, and the figures are not comparable with smtp-sink's.
// Uses DATABASE_URL (else postgres://postgres@127.0.0.1:5432/postgres) for a fresh database per round,
// REDIS_URL (else redis://127.0.0.1:6379) with a fresh queue prefix; both are removed at the end.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { SMTPServer } from 'smtp-server';
import { closeContext, createContext } from '../src/app.js';
import { makeSettings } from '../src/config/env.js';
import type { Context } from '../src/context.js';
import { QUEUE_NAMES } from '../src/queue/index.js';
import { loadTemplateSource, renderMessage } from '../src/render/index.js';
import { toMailOptions } from '../src/mail/message.js';
import { startFanOut } from '../src/usecases/fanOutSegment.js';
import { seedAudience } from './bench-audience.js';
import { postgresCpuSeconds, processCpuSeconds, redisCpuSeconds } from './bench-cpu.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LEADS = Number(process.argv[2] ?? 5000);
const ROUNDS = Number(process.argv[3] ?? 2);
const WORKERS = Number(process.argv[4] ?? 1);
const LATER = process.env.BENCH_LATER === '1';
/** The follow-up's wait: longer than a fan-out page of these takes, so every follow-up is planned ahead. */
const LATER_WAIT_S = 3;
const CONCURRENCY = Number(process.env.WORKER_CONCURRENCY ?? 10);
const SMTP_POOL = Number(process.env.SMTP_POOL_SIZE ?? 5);
const DKIM = process.env.BENCH_DKIM === '1';
const SEQUENCE = 'awareness-benchmark';
const baseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

// Sink ----------------------------------------------------------------------------------------------

interface Sink {
  kind: string;
  port: number;
  /** smtp-sink's process (an in-process sink's CPU is this process's). */
  pid?: number;
  stop(): Promise<void>;
}

function findSmtpSink(): string | null {
  for (const p of ['/usr/sbin/smtp-sink', '/usr/lib/postfix/sbin/smtp-sink']) if (existsSync(p)) return p;
  const which = spawnSync('sh', ['-c', 'command -v smtp-sink'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : null;
}

function installSmtpSink(): string | null {
  console.error('smtp-sink not found: installing postfix with apt-get…');
  const r = spawnSync('sh', ['-c', 'DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix'], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) console.error(`could not install postfix (exit ${r.status}): ${(r.stderr ?? '').trim().split('\n').slice(-2).join(' ')}`);
  return findSmtpSink();
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => (c.end(), resolve(true)));
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

async function startSink(): Promise<Sink> {
  const bin = findSmtpSink() ?? installSmtpSink();
  const port = await freePort();
  if (bin) {
    // -u: smtp-sink refuses to run as root without a user to drop to. Backlog 256.
    const args = [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), '-m', '1000', `127.0.0.1:${port}`, '256'];
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    await waitForPort(port);
    return { kind: `Postfix smtp-sink (${bin})`, port, pid: child.pid, stop: async () => void child.kill('SIGTERM') };
  }
  const server = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'], logger: false, size: 0, onData: (s, _session, cb) => (s.resume(), s.on('end', () => cb())) });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { kind: 'IN-PROCESS smtp-server sink (smtp-sink unavailable: figures NOT comparable with a C sink)', port, stop: () => new Promise((r) => server.close(() => r())) };
}

// Fixture --------------------------------------------------------------------------------------------

/** The sample config with nothing that holds a send back: no window, no caps, no sending limits. */
function benchConfig(dkimKey: string | null): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nurture-bench-send-'));
  cpSync(path.join(root, 'config'), dir, { recursive: true });
  let funnel = readFileSync(path.join(dir, 'funnel.yaml'), 'utf8');
  funnel = funnel.replace(/^\s*window: \{[^\n]*\}\n/m, '\n').replace(/^caps:\n(?:[ \t]+[^\n]*\n)+/m, '');
  if (dkimKey) {
    writeFileSync(path.join(dir, 'dkim.pem'), dkimKey);
    funnel = funnel.replace(/^sending:\n/m, '') + `\nsending:\n  dkim:\n    - { domain: handrail.example, selector: bench, privateKey: "file:dkim.pem" }\n`;
  }
  writeFileSync(path.join(dir, 'funnel.yaml'), funnel);
  if (LATER) {
    // The email as a follow-up is sent: the fan-out waits, and each message then comes of a step job.
    const file = path.join(dir, 'sequences', `${SEQUENCE}.yaml`);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^steps:\n/m, `steps:\n  - id: first-wait\n    type: wait\n    for: ${LATER_WAIT_S}s\n`));
  }
  return dir;
}

async function freshDatabase(admin: postgres.Sql): Promise<{ name: string; url: string }> {
  const name = `nurture_bench_send_${randomBytes(5).toString('hex')}`;
  await admin.unsafe(`create database ${name}`);
  const u = new URL(baseUrl);
  u.pathname = `/${name}`;
  return { name, url: u.toString() };
}

// nurture ---------------------------------------------------------------------------------------------

interface Result {
  side: 'nurture' | 'bare';
  round: number;
  messages: number;
  seconds: number;
  /** CPU seconds each part used meanwhile. */
  cpu: Record<string, number>;
  note?: string;
}

function startWorker(env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...(process.env.BENCH_WORKER_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? []), path.join(root, 'bin', 'nurture.js'), 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/workers\s/.test(out)) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`worker exited ${code}: ${err}`)));
  });
}

async function runNurture(round: number, admin: postgres.Sql, configDir: string, sink: Sink): Promise<Result> {
  const db = await freshDatabase(admin);
  const prefix = `benchsend${randomBytes(4).toString('hex')}`;
  const common = { WEBHOOK_SECRET: 'whsec_bench_send_0123456789', TRACKING_SECRET: 'bench-send-tracking-secret', MESSAGE_ID_DOMAIN: 'bench.test' };
  let ctx: Context | null = null;
  const workers: ChildProcess[] = [];
  try {
    ctx = await createContext({
      databaseUrl: db.url,
      redisUrl,
      smtpUrl: null,
      configDir,
      templatesDir: path.join(root, 'templates'),
      queuePrefix: prefix,
      settings: makeSettings({ webhookSecret: common.WEBHOOK_SECRET, trackingSecret: common.TRACKING_SECRET, messageIdDomain: common.MESSAGE_ID_DOMAIN }),
    });
    const pg = ctx.database.sql;
    await seedAudience(pg, LEADS);
    const env = {
      ...process.env,
      ...common,
      DATABASE_URL: db.url,
      REDIS_URL: redisUrl,
      SMTP_URL: `smtp://127.0.0.1:${sink.port}?tls=off`,
      SMTP_PROVIDER: 'none',
      NURTURE_CONFIG_DIR: configDir,
      NURTURE_TEMPLATES_DIR: path.join(root, 'templates'),
      QUEUE_PREFIX: prefix,
      WORKER_CONCURRENCY: String(CONCURRENCY),
      NURTURE_DATA_DIR: path.join(configDir, 'data'),
      PUBLIC_URL: 'https://track.bench.test',
    };
    for (let i = 0; i < WORKERS; i++) workers.push(await startWorker(env));
    const redis = new Redis(redisUrl);
    const cpuNow = async () => ({
      workers: workers.reduce((t, w) => t + processCpuSeconds(w.pid), 0),
      Postgres: postgresCpuSeconds(db.name),
      Redis: await redisCpuSeconds(redis),
      sink: processCpuSeconds(sink.pid),
    });
    const cpu0 = await cpuNow();
    const start = process.hrtime.bigint();
    await startFanOut(ctx, SEQUENCE, 'cli');
    let sent = 0;
    for (;;) {
      await new Promise((r) => setTimeout(r, 100));
      const [row] = await pg`select count(*) filter (where status = 'sent')::int as sent, count(*) filter (where status not in ('sent', 'queued', 'sending'))::int as other from messages`;
      sent = row!.sent as number;
      if (row!.other) throw new Error(`${row!.other} messages neither sent nor in flight`);
      if (sent >= LEADS) break;
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9 - (LATER ? LATER_WAIT_S : 0);
    const cpu1 = await cpuNow();
    await redis.quit();
    const cpu = Object.fromEntries(Object.entries(cpu1).map(([k, v]) => [k, v - cpu0[k as keyof typeof cpu0]]));
    // Every one once, each with the relay's 250.
    const [check] = await pg`select count(*)::int as n, count(distinct lead_id)::int as leads, count(*) filter (where relay_response like '250%')::int as ok from messages where step_id = 'benchmark'`;
    const note = check!.n !== LEADS || check!.leads !== LEADS || check!.ok !== LEADS ? `CHECK FAILED: ${JSON.stringify(check)}` : undefined;
    return { side: 'nurture', round, messages: sent, seconds, cpu, ...(note ? { note } : {}) };
  } finally {
    await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : (w.once('exit', r), w.kill('SIGTERM'))))));
    if (ctx) {
      await Promise.all(QUEUE_NAMES.map((n) => ctx!.queues[n].waitUntilReady()));
      await closeContext(ctx);
    }
    const redis = new Redis(redisUrl);
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    await redis.quit();
    await admin.unsafe(`drop database if exists ${db.name} with (force)`);
  }
}

// bare nodemailer ---------------------------------------------------------------------------------

/** The sample newsletter rendered once through nurture's own renderer: the bytes both sides send. */
async function sampleMessage(configDir: string) {
  const { loadConfig } = await import('../src/config/load.js');
  const { TemplateCache } = await import('../src/render/index.js');
  const config = loadConfig(configDir, { templatesDir: path.join(root, 'templates') });
  const seq = config.sequences.get(SEQUENCE)!;
  const step = seq.steps.find((s) => s.type === 'email')!;
  if (step.type !== 'email') throw new Error('no email step');
  const compiled = await new TemplateCache().get(loadTemplateSource(path.join(root, 'templates'), step.template));
  const brand = config.funnel.senders.brand!;
  const lead = { id: '00000000-0000-4000-8000-000000000001', email: 'lead1@bench.test', firstName: 'Lead1', lastName: null, title: null, persona: 'champion', stage: 'awareness', attributes: {} };
  const rendered = renderMessage(
    compiled,
    {
      lead: lead as never,
      account: { name: 'Account 1', domain: null, industry: null, tier: 'mid-market', country: null, attributes: {} } as never,
      owner: null,
      sender: { name: brand.name, email: brand.email } as never,
      postalAddress: config.funnel.postalAddress ?? null,
      sequence: { id: seq.id, name: seq.name },
      links: { unsubscribe: 'https://track.bench.test/u/x' },
    },
    { trackLink: (l) => `https://track.bench.test/c/${l.id}`, pixelUrl: 'https://track.bench.test/o.gif' },
  );
  return { rendered, from: brand };
}

async function runBare(round: number, sink: Sink, sample: Awaited<ReturnType<typeof sampleMessage>>, dkim: { domainName: string; keySelector: string; privateKey: string } | null): Promise<Result> {
  const transport = nodemailer.createTransport({ pool: true, maxConnections: SMTP_POOL, host: '127.0.0.1', port: sink.port, ignoreTLS: true });
  const [self0, sink0] = [process.cpuUsage(), processCpuSeconds(sink.pid)];
  const start = process.hrtime.bigint();
  let next = 0;
  // As many messages in hand as connections (nodemailer queues the rest itself, but this keeps memory flat).
  const lane = async () => {
    for (let i = next++; i < LEADS; i = next++) {
      await transport.sendMail(
        toMailOptions({
          messageId: `${randomBytes(8).toString('hex')}@bench.test`,
          from: { name: sample.from.name, email: sample.from.email },
          to: { name: `Lead${i}`, email: `lead${i}@bench.test` },
          replyTo: sample.from.replyTo ?? null,
          envelopeFrom: `bounce+${i}@handrail.example`,
          subject: sample.rendered.subject,
          html: sample.rendered.html,
          text: sample.rendered.text,
          unsubscribeUrl: 'https://track.bench.test/u/x',
          ...(dkim ? { dkim } : {}),
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: SMTP_POOL * 2 }, lane));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const self = process.cpuUsage(self0);
  const cpu = { nodemailer: (self.user + self.system) / 1e6, sink: processCpuSeconds(sink.pid) - sink0 };
  transport.close();
  return { side: 'bare', round, messages: LEADS, seconds, cpu };
}

// main --------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  // The workers run bin/nurture.js, which runs dist/ only when it is newer than every source file (else
  // the sources through tsx): build first, so what is measured is the compiled build, as deployed.
  const built = spawnSync(process.execPath, [path.join(root, 'scripts/build.js')], { cwd: root, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`npm run build failed: ${built.stderr || built.stdout}`);
  const sink = await startSink();
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  const key = DKIM ? generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() : null;
  const configDir = benchConfig(key);
  const results: Result[] = [];
  try {
    const sample = await sampleMessage(configDir);
    const dkim = key ? { domainName: 'handrail.example', keySelector: 'bench', privateKey: key } : null;
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate which goes first, so neither always meets a warm (or a busy) machine.
      const order = round % 2 ? (['nurture', 'bare'] as const) : (['bare', 'nurture'] as const);
      for (const side of order) {
        const r = side === 'nurture' ? await runNurture(round, admin, configDir, sink) : await runBare(round, sink, sample, dkim);
        results.push(r);
        console.error(`round ${round} ${side}: ${r.messages} in ${r.seconds.toFixed(2)} s = ${(r.messages / r.seconds).toFixed(0)}/s${r.note ? ` ${r.note}` : ''}`);
      }
    }
    const cpu = os.cpus()[0];
    const rate = (r: Result) => r.messages / r.seconds;
    const range = (xs: number[], digits = 0) => (Math.min(...xs) === Math.max(...xs) ? Math.min(...xs).toFixed(digits) : `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`);
    const n = results.filter((r) => r.side === 'nurture');
    const b = results.filter((r) => r.side === 'bare');
    const ratios = n.map((r) => rate(r) / rate(b.find((x) => x.round === r.round)!));
    console.log(`machine   ${cpu?.model ?? 'unknown cpu'}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GB, node ${process.version}, ${os.platform()} ${os.release()}, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    console.log(`sink      ${sink.kind}`);
    console.log(`setup     ${LEADS} leads, sample newsletter (${Math.round(Buffer.byteLength(sample.rendered.html) / 1024)} KB HTML), ${WORKERS} worker process(es) at concurrency ${CONCURRENCY}, SMTP pool ${SMTP_POOL}${DKIM ? ', DKIM rsa-2048 on both sides' : ', unsigned'}${LATER ? `, the email as a follow-up (after a ${LATER_WAIT_S} s wait, timed from its end)` : ', the email as the first step (taken by the fan-out page)'}, ${ROUNDS} interleaved rounds`);
    console.log('');
    console.log('| round | nurture msg/s | bare nodemailer msg/s | ratio |');
    console.log('|---:|---:|---:|---:|');
    for (const r of n) {
      const bare = b.find((x) => x.round === r.round)!;
      console.log(`| ${r.round} | ${rate(r).toFixed(0)} | ${rate(bare).toFixed(0)} | ${(rate(r) / rate(bare)).toFixed(2)}×${r.note ? ` ${r.note}` : ''} |`);
    }
    console.log('');
    console.log(`nurture ${range(n.map(rate))} msg/s · bare ${range(b.map(rate))} msg/s · ratio ${range(ratios, 2)}×`);
    // Per message, so the sides compare whatever the machine's neighbours did to the wall time.
    const perMessage = (rs: Result[]) =>
      Object.keys(rs[0]!.cpu)
        .map((k) => `${k} ${range(rs.map((r) => (r.cpu[k]! / r.messages) * 1000), 2)}`)
        .concat(`all ${range(rs.map((r) => (Object.values(r.cpu).reduce((t, v) => t + v, 0) / r.messages) * 1000), 2)}`)
        .join(', ');
    console.log(`cpu ms per message: nurture ${perMessage(n)} · bare ${perMessage(b)}${sink.pid ? '' : ' (in-process sink: counted in nodemailer\'s figure on the bare side)'}`);
    if (n.some((r) => r.note)) process.exitCode = 1;
  } finally {
    await admin.end();
    await sink.stop();
    rmSync(configDir, { recursive: true, force: true });
  }
}

await main();
