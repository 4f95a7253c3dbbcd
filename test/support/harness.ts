// A whole nurture per test file: a fresh database, a fresh queue prefix, a real SMTP server in-process,
// the real workers and HTTP server. Nothing is mocked.
import { randomBytes } from 'node:crypto';
import { simpleParser, type ParsedMail } from 'mailparser';
import postgres from 'postgres';
import { SMTPServer } from 'smtp-server';
import type { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { startWorkers, type Workers } from '../../workers/index.js';
import { closeContext, createContext } from '../../src/app.js';
import type { Context } from '../../src/context.js';
import { makeSettings, type Settings } from '../../src/config/env.js';
import { parseDuration } from '../../src/config/duration.js';
import { startHttp, type HttpServer } from '../../src/http/server.js';
import { runStep, type RunStepResult } from '../../src/usecases/runStep.js';
import { signedHeaders } from '../../src/http/signing.js';
import type { WatcherOptions } from '../../src/mailbox/watcher.js';

export interface CaughtMail {
  envelopeTo: string[];
  raw: string;
  parsed: ParsedMail;
}

export interface SmtpSink {
  url: string;
  mails: CaughtMail[];
  /** Answer for RCPT TO of an address: null accepts. */
  rcptResponse: (address: string) => { code: number; message: string } | null;
  close(): Promise<void>;
}

export async function startSmtpSink(): Promise<SmtpSink> {
  const mails: CaughtMail[] = [];
  const sink: Partial<SmtpSink> = { mails, rcptResponse: () => null };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    onRcptTo(address, _session, cb) {
      const r = sink.rcptResponse!(address.address);
      if (!r) return cb();
      const err = Object.assign(new Error(r.message), { responseCode: r.code });
      cb(err);
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        simpleParser(raw).then((parsed) => {
          mails.push({ envelopeTo: session.envelope.rcptTo.map((r) => r.address), raw, parsed });
          cb(null, 'Ok: queued as TEST');
        }, cb);
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as { port: number }).port;
  return Object.assign(sink, {
    url: `smtp://127.0.0.1:${port}?tls=off`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }) as SmtpSink;
}

export interface Harness {
  ctx: Context;
  http: HttpServer;
  workers: Workers;
  smtp: SmtpSink;
  databaseUrl: string;
  webhookSecret: string;
  /** How long a person's open or click stays provisional here: budgets for waiting on one to count derive from it. */
  settleMs: number;
  /**
   * One of the harness's workers, by queue name. A test that must order things against it pauses it
   * (BullMQ's pause waits for the job in hand) and resumes it after: e.g. 'maintenance', whose reconcile
   * runs at start-up and every minute, for a test that calls reconcile itself or moves the clock on.
   */
  worker(name: string): Worker;
  /** POSTs a signed webhook body; returns status and JSON. */
  post(path: string, body: unknown, opts?: { id?: string; headers?: Record<string, string>; raw?: string }): Promise<{ status: number; json: any }>;
  close(): Promise<void>;
}

/** The settle period tests get unless they ask for another: about the shortest the config allows. */
export const DEFAULT_SETTLE_AFTER = '11s';
/** The longest a person's click or open may take to count here, on a busy machine: the period plus slack. */
export const SETTLE_BUDGET_MS = parseDuration(DEFAULT_SETTLE_AFTER) + 30_000;

export interface HarnessOptions {
  configDir?: string;
  templatesDir?: string;
  now?: () => Date;
  settings?: Partial<Settings>;
  /**
   * How long a person's open or click stays provisional. Tests that are not about settling use about the
   * shortest the config allows (11s), so engagement counts soon; tests of bursts give scanners longer.
   */
  settleAfter?: string;
  /** The reps' mailbox watchers' lock and backoff timings (tests shorten them). */
  mailbox?: WatcherOptions;
  /**
   * How nurture reaches the fresh database (`directUrl` is Postgres itself): e.g. through a PgBouncer.
   * Creating and dropping the database always go to Postgres directly.
   */
  databaseUrlFor?: (directUrl: string, dbName: string) => string;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const baseUrl = inject('databaseUrl');
  const redisUrl = inject('redisUrl');
  const dbName = `nurture_t_${randomBytes(5).toString('hex')}`;
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${dbName}`);
  await admin.end();
  const u = new URL(baseUrl);
  u.pathname = `/${dbName}`;
  const databaseUrl = opts.databaseUrlFor ? opts.databaseUrlFor(u.toString(), dbName) : u.toString();
  const smtp = await startSmtpSink();
  const webhookSecret = `whsec_${randomBytes(24).toString('base64')}`;
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const ctx = await createContext({
    databaseUrl,
    redisUrl,
    smtpUrl: smtp.url,
    configDir: opts.configDir ?? 'config',
    templatesDir: opts.templatesDir ?? 'templates',
    queuePrefix: prefix,
    settings: makeSettings({
      webhookSecret,
      trackingSecret: randomBytes(24).toString('base64url'),
      publicUrl: 'http://127.0.0.1:0',
      trustedProxies: ['127.0.0.1'],
      ...opts.settings,
    }),
    ...(opts.now ? { now: opts.now } : {}),
  });
  ctx.config.funnel.tracking.settleAfter = opts.settleAfter ?? DEFAULT_SETTLE_AFTER;
  const http = await startHttp(ctx, { host: '127.0.0.1', port: 0 });
  ctx.settings.publicUrl = http.url;
  const workers = await startWorkers(ctx, { concurrency: 5, reconcileEverySeconds: 60, ...(opts.mailbox ? { mailbox: opts.mailbox } : {}) });

  const post: Harness['post'] = async (path, body, o = {}) => {
    const text = o.raw ?? JSON.stringify(body);
    const res = await fetch(`${http.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...signedHeaders(webhookSecret, text, o.id ? { id: o.id } : {}), ...(o.headers ?? {}) },
      body: text,
    });
    const t = await res.text();
    return { status: res.status, json: t ? JSON.parse(t) : null };
  };

  return {
    ctx,
    http,
    workers,
    smtp,
    databaseUrl,
    webhookSecret,
    settleMs: parseDuration(ctx.config.funnel.tracking.settleAfter),
    worker: (name) => {
      const found = workers.all.find((w) => w.name === name);
      if (!found) throw new Error(`the harness runs no ${name} worker`);
      return found;
    },
    post,
    close: async () => {
      await http.close();
      await workers.close();
      await closeContext(ctx);
      await smtp.close();
      const redis = new Redis(redisUrl);
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
      const a = postgres(baseUrl, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${dbName} with (force)`);
      await a.end();
    },
  };
}

/** Polls until `check` returns a truthy value (an event we can't subscribe to), or fails with `what`. */
export async function eventually<T>(what: string, check: () => Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Runs the due step of a lead's one enrollment here in the test, once a trigger has enrolled them, with
 * the step worker paused by the caller: a test that must act inside the wait after that step (a pause,
 * an unsubscribe, an out-of-office) then does so however slow the machine. The enrollment, as it was.
 */
export async function runDueStepOf(h: Harness, email: string): Promise<{ id: string; revision: number; ran: RunStepResult }> {
  const rows = await eventually(`${email} enrolled`, async () => {
    const rows = await h.ctx.database.sql<{ id: string; revision: number }[]>`select e.id, e.revision from enrollments e join leads l on l.id = e.lead_id where l.email = ${email}`;
    return rows.length ? rows : null;
  });
  if (rows.length !== 1) throw new Error(`${email} has ${rows.length} enrollments: runDueStepOf takes a lead with one`);
  const { id, revision } = rows[0]!;
  return { id, revision, ran: await runStep(h.ctx, { enrollmentId: id, revision }) };
}
