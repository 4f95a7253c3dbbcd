// The HTTP side: signed triggers and inbound mail, tracking, unsubscribe, health. Each route parses
// its input, calls one use case and maps the result; no decisions are made here.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq, sql } from 'drizzle-orm';
import type { Context } from '../context.js';
import { webhookReceipts } from '../db/schema.js';
import { exitLead, recordEvent, upsertLead } from '../usecases/enrollLead.js';
import { isEmail, TriggerBody } from '../usecases/inputs.js';
import { receiveInbound } from '../usecases/receiveInbound.js';
import { startFanOut } from '../usecases/fanOutSegment.js';
import { recordClick, recordOpen } from '../usecases/track.js';
import { TRACKING_HEADERS, TrackingBatcher, type BatchOptions } from '../usecases/trackBatch.js';
import { statsRoute } from '../usecases/stats.js';
import { unsubscribe, unsubscribeTarget } from '../usecases/unsubscribe.js';
import { previewTemplate, storedLeadContext } from '../usecases/previewTemplate.js';
import { listTemplates } from '../config/semantics.js';
import { clientIp } from './clientIp.js';
import { providerEvents, providerInbound, providerPreflight } from './providers.js';
import { HttpError, sendError, sendJson } from './respond.js';
import { BodyBudget, bodyLimits, readBody, refuseBody, type BodyLimits } from './body.js';
import { readableMail } from './mail.js';
import { checkWebhookHeaders, verifyWebhook, type WebhookHeaders } from '../webhooks/signing.js';
import { unsubscribePage } from './pages.js';
import { operatorOf } from './access.js';
import { isPeoplePath, peopleRoute } from './people.js';
import { isReadApiPath, readApiRoute } from './api.js';
import { consoleRoute, isConsolePath } from './console/routes.js';
import { ActivityTail } from '../usecases/activityFeed.js';
import { listenActivity } from '../db/activity.js';

// A transparent 1×1 GIF.
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

export interface HttpServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export interface HttpOptions {
  host: string;
  port: number;
  /** Tracking hits are written in micro-batches (default); null writes each one on its own. */
  batch?: BatchOptions | null;
  /** Body size caps per route and for all bodies in flight together (defaults: DEFAULT_BODY_LIMITS). */
  limits?: Partial<BodyLimits>;
}

/** What every request shares: the context, the tracking batcher, and the caps on bodies. */
interface Http {
  ctx: Context;
  batcher: TrackingBatcher | null;
  limits: BodyLimits;
  budget: BodyBudget;
  /** The one follower of the activity log that every live view (console, stream) shares. */
  tail: ActivityTail;
}

export async function startHttp(ctx: Context, opts: HttpOptions): Promise<HttpServer> {
  const limits = bodyLimits(opts.limits);
  const tail = new ActivityTail(ctx.db, { listen: (onNotify) => listenActivity(ctx.database.sql, onNotify) });
  const http: Http = { ctx, batcher: opts.batch === null ? null : new TrackingBatcher(ctx, opts.batch), limits, budget: new BodyBudget(limits.inFlight), tail };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(http, req, res).catch((err) => {
      refuseBody(req, res, limits.discard);
      sendError(res, err, req);
    });
  };
  const server = createServer(onRequest);
  // Expect: 100-continue is answered only once a route has decided to read the body (readBody): a
  // request refused on its headers (unsigned, unconfigured, too large) is never sent.
  server.on('checkContinue', onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://${opts.host}:${port}`,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await http.batcher?.drain();
      await http.tail.close();
    },
  };
}

async function handle(http: Http, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { ctx, batcher, limits, budget } = http;
  const url = parseUrl(req.url);
  const path = url.pathname;
  const method = req.method ?? 'GET';
  const ua = req.headers['user-agent'] ?? null;
  const ip = clientIp(req, ctx.settings.trustedProxies);
  let m: RegExpExecArray | null;

  if (path === '/health') {
    await ctx.db.execute(sql`select 1`);
    return sendJson(res, 200, { ok: true });
  }
  if ((m = /^\/t\/o\/([\w.-]+)\.gif$/.exec(path)) && (method === 'GET' || method === 'HEAD')) {
    // The pixel is served whatever the token: a broken image tells a scanner nothing.
    const hit = { token: m[1]!, userAgent: ua, ip, method, headers: trackingHeaders(req) };
    await (batcher ? batcher.open(hit) : recordOpen(ctx, hit));
    res.writeHead(200, { 'content-type': 'image/gif', 'cache-control': 'no-store, max-age=0', 'content-length': PIXEL.length });
    return void res.end(method === 'HEAD' ? undefined : PIXEL);
  }
  if ((m = /^\/t\/c\/([\w.-]+)\/([^/]+)$/.exec(path)) && (method === 'GET' || method === 'HEAD')) {
    const hit = { token: m[1]!, linkId: decodeSegment(m[2]!, 'link'), userAgent: ua, ip, method, headers: trackingHeaders(req) };
    const target = await (batcher ? batcher.click(hit) : recordClick(ctx, hit));
    if (!target) throw new HttpError(404, 'unknown_link', 'this link is not one nurture sent (or it was altered)');
    res.writeHead(302, { location: target, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    return void res.end();
  }
  if ((m = /^\/u\/([\w.-]+)$/.exec(path))) {
    if (method === 'POST') {
      const done = await unsubscribe(ctx, m[1]!, isOneClick(await readBody(req, res, limits.small, budget)) ? 'one_click' : 'page');
      if (!done) throw new HttpError(404, 'unknown_link', 'this unsubscribe link is not valid');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return void res.end(unsubscribePage({ email: done.email, done: true, action: path }));
    }
    if (method === 'GET') {
      const target = await unsubscribeTarget(ctx, m[1]!);
      if (!target) throw new HttpError(404, 'unknown_link', 'this unsubscribe link is not valid');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return void res.end(unsubscribePage({ email: target.email, done: false, action: path }));
    }
  }
  if (path === '/preview/' && method === 'GET') {
    if (!isOperator(req, ctx.settings.adminToken)) throw new HttpError(403, 'forbidden', 'previews are available from this machine, or with the admin token as a Bearer token');
    return sendJson(res, 200, { templates: listTemplates(ctx.config.templatesDir), usage: '/preview/<template>?lead=<email>[&part=text]' });
  }
  if ((m = /^\/preview\/([\w-]+)$/.exec(path)) && method === 'GET') {
    // Shows a lead's data: only for the operator (loopback, or the admin token).
    if (!isOperator(req, ctx.settings.adminToken)) throw new HttpError(403, 'forbidden', 'previews are available from this machine, or with the admin token as a Bearer token');
    const email = url.searchParams.get('lead');
    if (!email) throw new HttpError(400, 'invalid_query', 'add ?lead=<email> to preview for a lead', 'lead');
    if (!isEmail(email.trim().toLowerCase())) throw new HttpError(400, 'invalid_query', `lead "${email.slice(0, 100)}" is not an email address`, 'lead');
    const r = await previewTemplate(ctx.templates, ctx.config.templatesDir, m[1]!, await storedLeadContext(ctx.db, ctx.settings.publicUrl, email), ctx.config);
    const part = url.searchParams.get('part');
    if (part === 'text') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      return void res.end(`Subject: ${r.subject}\nPreheader: ${r.preheader}\n\n${r.text}`);
    }
    // The rendered email is shown as it is, but may run no script and load nothing active.
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': "default-src 'none'; img-src * data:; style-src 'unsafe-inline'", 'x-nurture-subject': encodeURIComponent(r.subject) });
    return void res.end(r.html);
  }
  if (path === '/v1/stats' && method === 'GET') {
    // Counts across every lead and account: only for the operator (loopback, or the admin token).
    if (!isOperator(req, ctx.settings.adminToken)) throw new HttpError(403, 'forbidden', 'stats are available from this machine, or with the admin token as a Bearer token');
    return sendJson(res, 200, await statsRoute(ctx, url));
  }
  if (path === '/v1/triggers' && method === 'POST') {
    // Signed first (a caller without the secret learns nothing about the route), then JSON only.
    return signed(http, req, res, limits.triggers, requireJson, async (body) => {
      const parsed = TriggerBody.safeParse(parseJson(body));
      if (!parsed.success) throw HttpError.fromZod(parsed.error);
      const t = parsed.data;
      switch (t.type) {
        case 'lead.upsert':
          return upsertLead(ctx, t.lead, t.sequence ? { sequence: t.sequence } : {});
        case 'lead.exit':
          return exitLead(ctx, t.email, t.sequence);
        case 'event':
          return recordEvent(ctx, t.event, t.email, t.data);
      }
    });
  }
  if ((m = /^\/v1\/sequences\/([\w-]+)\/fanout$/.exec(path)) && method === 'POST') {
    const sequenceId = m[1]!;
    return signed(http, req, res, limits.small, null, async () => {
      return startFanOut(ctx, sequenceId);
    });
  }
  if ((m = /^\/v1\/providers\/(\w+)\/(events|inbound)$/.exec(path)) && method === 'POST') {
    // Refused on what the headers say (unknown, unconfigured, Postmark's credentials) before reading the body.
    const provider = providerPreflight(ctx, m[1]!, req);
    const body = await readBody(req, res, limits.providers, budget);
    const result = m[2] === 'events' ? await providerEvents(ctx, provider, req, body) : await providerInbound(ctx, provider, req, body);
    return sendJson(res, 200, result);
  }
  if (path === '/v1/inbound' && method === 'POST') {
    return signed(http, req, res, limits.inbound, null, async (body) => readableMail(() => receiveInbound(ctx, body)));
  }
  // The read API, /metrics and the web console: for the operator only (see access.ts).
  // People data: imports, a person's export and erasure, and the preference page (see people.ts).
  if (isPeoplePath(path, method)) return peopleRoute({ ctx, limits, budget, signed: (limit, work) => signed(http, req, res, limit, null, work) }, req, res, url);
  if (isReadApiPath(path, method)) return readApiRoute(ctx, http.tail, ctx.metrics ?? null, req, res, url);
  if (isConsolePath(path, method)) return consoleRoute(http, req, res, url);
  throw new HttpError(404, 'not_found', `no route for ${method} ${path}`);
}

/** The request target as a URL; one that cannot be parsed is the client's error. */
function parseUrl(target: string | undefined): URL {
  try {
    return new URL(target ?? '/', 'http://local');
  } catch {
    throw new HttpError(400, 'invalid_url', 'the request target is not a valid URL path');
  }
}

/** One percent-encoded path segment; a malformed escape (%E0%A4%A) is a 400 that says so. */
function decodeSegment(segment: string, what: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'invalid_path', `the ${what} in this URL is not valid percent-encoding (a % must be followed by two hex digits forming UTF-8)`, what);
  }
}

/** /v1/triggers takes JSON, and JSON is UTF-8 (RFC 8259): anything else is a 415. */
function requireJson(req: IncomingMessage): void {
  const type = String(req.headers['content-type'] ?? '');
  const [media, ...params] = type.split(';').map((p) => p.trim().toLowerCase());
  if (media !== 'application/json') {
    throw new HttpError(415, 'unsupported_media_type', `send the trigger as Content-Type: application/json${type ? ` (got ${type.slice(0, 100)})` : ' (none was given)'}`);
  }
  const charset = params.find((p) => p.startsWith('charset='))?.slice(8).replace(/"/g, '');
  if (charset && charset !== 'utf-8' && charset !== 'utf8') throw new HttpError(415, 'unsupported_media_type', `JSON is UTF-8: send charset=utf-8 or none (got charset=${charset.slice(0, 40)})`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseJson(body: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new HttpError(400, 'invalid_json', 'the body is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'invalid_json', `body is not JSON: ${(err as Error).message}`);
  }
}

/** Loopback that nothing relayed, the admin token as a Bearer token, or a console session (see access.ts). */
function isOperator(req: IncomingMessage, adminToken: string | null): boolean {
  return operatorOf(req, { adminToken }) !== null;
}

function isOneClick(body: Buffer): boolean {
  return new URLSearchParams(body.toString('utf8')).get('List-Unsubscribe') === 'One-Click';
}

/**
 * Standard Webhooks: verify the signature over the raw body bytes (401 and nothing changes when it fails),
 * then answer a redelivered webhook-id with the first answer instead of doing the work again. Missing
 * headers or a stale timestamp are refused before the body is read.
 */
const ABANDONED_RECEIPT_MS = 60_000;

async function signed(http: Http, req: IncomingMessage, res: ServerResponse, limit: number, accepts: ((req: IncomingMessage) => void) | null, work: (body: Buffer) => Promise<unknown>): Promise<void> {
  const { ctx } = http;
  const headers: WebhookHeaders = {
    id: String(req.headers['webhook-id'] ?? ''),
    timestamp: String(req.headers['webhook-timestamp'] ?? ''),
    signature: String(req.headers['webhook-signature'] ?? ''),
  };
  // The tolerance is about the sender's clock and ours, so it is judged on the wall clock.
  const fresh = checkWebhookHeaders(headers, Date.now());
  if (!fresh.ok) throw new HttpError(401, 'bad_signature', `webhook refused: ${fresh.reason}`);
  const body = await readBody(req, res, limit, http.budget);
  const verdict = verifyWebhook(ctx.settings.webhookSecret, body, headers, Date.now());
  if (!verdict.ok) throw new HttpError(401, 'bad_signature', `webhook refused: ${verdict.reason}`);
  accepts?.(req);
  return answerOnce(ctx, headers.id, res, body, work);
}

async function answerOnce(ctx: Context, id: string, res: ServerResponse, body: Buffer, work: (body: Buffer) => Promise<unknown>): Promise<void> {
  const claimed = await ctx.db.insert(webhookReceipts).values({ id, response: { pending: true } }).onConflictDoNothing().returning({ id: webhookReceipts.id });
  if (!claimed.length) {
    const [prior] = await ctx.db.select().from(webhookReceipts).where(eq(webhookReceipts.id, id));
    const response = prior?.response as { status?: number; body?: unknown; pending?: boolean } | undefined;
    if (response?.pending) {
      // A receipt pending this long belongs to a process that died mid-request: let this delivery do the work.
      const abandoned = prior && ctx.now().getTime() - prior.receivedAt.getTime() > ABANDONED_RECEIPT_MS;
      if (!abandoned) throw new HttpError(409, 'in_progress', `webhook ${id} is being processed; retry later`);
      await ctx.db.delete(webhookReceipts).where(eq(webhookReceipts.id, id));
      return answerOnce(ctx, id, res, body, work);
    }
    res.setHeader('webhook-duplicate', 'true');
    return sendJson(res, response?.status ?? 200, response?.body ?? {});
  }
  try {
    const result = await work(body);
    await ctx.db.update(webhookReceipts).set({ response: { status: 200, body: result } }).where(eq(webhookReceipts.id, id));
    sendJson(res, 200, result);
  } catch (err) {
    // A refused request leaves no receipt behind, so a corrected retry with the same id can succeed.
    await ctx.db.delete(webhookReceipts).where(eq(webhookReceipts.id, id));
    throw err;
  }
}

/** The headers that tell who fetched a pixel or link (a prefetch announces itself), capped in size. */
function trackingHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of TRACKING_HEADERS) {
    const v = req.headers[name];
    const text = Array.isArray(v) ? v.join(', ') : v;
    if (text) out[name] = text.slice(0, 256);
  }
  return out;
}
