// The HTTP side: signed triggers and inbound mail, tracking, unsubscribe, health. Each route parses
// its input, calls one use case and maps the result; no decisions are made here.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq, sql } from 'drizzle-orm';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import type { Context } from '../context.js';
import { webhookReceipts } from '../db/schema.js';
import { exitLead, recordEvent, upsertLead } from '../usecases/enrollLead.js';
import { TriggerBody } from '../usecases/inputs.js';
import { receiveInbound } from '../usecases/receiveInbound.js';
import { startFanOut } from '../usecases/fanOutSegment.js';
import { recordClick, recordOpen } from '../usecases/track.js';
import { TRACKING_HEADERS, TrackingBatcher, type BatchOptions } from '../usecases/trackBatch.js';
import { statsRoute } from '../usecases/stats.js';
import { unsubscribe, unsubscribeTarget } from '../usecases/unsubscribe.js';
import { previewTemplate, storedLeadContext } from '../usecases/previewTemplate.js';
import { clientIp } from './clientIp.js';
import { providerEvents, providerInbound } from './providers.js';
import { HttpError, readBody, sendError, sendJson } from './respond.js';
import { unsubscribePage } from './pages.js';

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
}

export async function startHttp(ctx: Context, opts: HttpOptions): Promise<HttpServer> {
  const webhook = new Webhook(ctx.settings.webhookSecret);
  const batcher = opts.batch === null ? null : new TrackingBatcher(ctx, opts.batch);
  const server = createServer((req, res) => {
    handle(ctx, webhook, batcher, req, res).catch((err) => sendError(res, err));
  });
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
      await batcher?.drain();
    },
  };
}

async function handle(ctx: Context, webhook: Webhook, batcher: TrackingBatcher | null, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://local');
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
    const hit = { token: m[1]!, linkId: decodeURIComponent(m[2]!), userAgent: ua, ip, method, headers: trackingHeaders(req) };
    const target = await (batcher ? batcher.click(hit) : recordClick(ctx, hit));
    if (!target) throw new HttpError(404, 'unknown_link', 'this link is not one nurture sent (or it was altered)');
    res.writeHead(302, { location: target, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    return void res.end();
  }
  if ((m = /^\/u\/([\w.-]+)$/.exec(path))) {
    if (method === 'POST') {
      const done = await unsubscribe(ctx, m[1]!, isOneClick(await readBody(req, 4096)) ? 'one_click' : 'page');
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
  if ((m = /^\/preview\/([\w-]+)$/.exec(path)) && method === 'GET') {
    // Shows a lead's data: only for the operator (loopback, or the admin token).
    if (!isOperator(req, ctx.settings.adminToken)) throw new HttpError(403, 'forbidden', 'previews are available from this machine, or with the admin token as a Bearer token');
    const email = url.searchParams.get('lead');
    if (!email) throw new HttpError(400, 'invalid_query', 'add ?lead=<email> to preview for a lead', 'lead');
    const r = await previewTemplate(ctx.templates, ctx.config.templatesDir, m[1]!, await storedLeadContext(ctx.db, ctx.settings.publicUrl, email));
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
    return signed(ctx, webhook, req, res, async (body) => {
      const parsed = TriggerBody.safeParse(JSON.parse(body.toString('utf8')));
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
    return signed(ctx, webhook, req, res, async () => startFanOut(ctx, sequenceId));
  }
  if ((m = /^\/v1\/providers\/(\w+)\/(events|inbound)$/.exec(path)) && method === 'POST') {
    const body = await readBody(req, 30 * 1024 * 1024);
    const result = m[2] === 'events' ? await providerEvents(ctx, m[1]!, req, body) : await providerInbound(ctx, m[1]!, req, body);
    return sendJson(res, 200, result);
  }
  if (path === '/v1/inbound' && method === 'POST') {
    return signed(ctx, webhook, req, res, async (body) => receiveInbound(ctx, body), 25 * 1024 * 1024);
  }
  throw new HttpError(404, 'not_found', `no route for ${method} ${path}`);
}

function isOperator(req: IncomingMessage, adminToken: string | null): boolean {
  if (adminToken && req.headers.authorization === `Bearer ${adminToken}`) return true;
  // Loopback only when nothing relayed the request: behind a proxy on this host, every visitor's
  // socket is loopback too.
  const peer = req.socket.remoteAddress ?? '';
  const relayed = req.headers['x-forwarded-for'] !== undefined || req.headers.forwarded !== undefined || req.headers['x-real-ip'] !== undefined;
  return !relayed && ['127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(peer);
}

function isOneClick(body: Buffer): boolean {
  return new URLSearchParams(body.toString('utf8')).get('List-Unsubscribe') === 'One-Click';
}

/**
 * Standard Webhooks: verify the signature over the raw body (401 and nothing changes when it fails),
 * then answer a redelivered webhook-id with the first answer instead of doing the work again.
 */
const ABANDONED_RECEIPT_MS = 60_000;

async function signed(ctx: Context, webhook: Webhook, req: IncomingMessage, res: ServerResponse, work: (body: Buffer) => Promise<unknown>, limit = 1024 * 1024, read?: Buffer): Promise<void> {
  const body = read ?? (await readBody(req, limit));
  const headers = {
    'webhook-id': String(req.headers['webhook-id'] ?? ''),
    'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
    'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
  };
  try {
    webhook.verify(body, headers, { jsonParse: false });
  } catch (err) {
    if (err instanceof WebhookVerificationError) throw new HttpError(401, 'bad_signature', `webhook refused: ${err.message}`);
    throw err;
  }
  const id = headers['webhook-id'];
  const claimed = await ctx.db.insert(webhookReceipts).values({ id, response: { pending: true } }).onConflictDoNothing().returning({ id: webhookReceipts.id });
  if (!claimed.length) {
    const [prior] = await ctx.db.select().from(webhookReceipts).where(eq(webhookReceipts.id, id));
    const response = prior?.response as { status?: number; body?: unknown; pending?: boolean } | undefined;
    if (response?.pending) {
      // A receipt pending this long belongs to a process that died mid-request: let this delivery do the work.
      const abandoned = prior && ctx.now().getTime() - prior.receivedAt.getTime() > ABANDONED_RECEIPT_MS;
      if (!abandoned) throw new HttpError(409, 'in_progress', `webhook ${id} is being processed; retry later`);
      await ctx.db.delete(webhookReceipts).where(eq(webhookReceipts.id, id));
      return signed(ctx, webhook, req, res, work, limit, body);
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
    if (err instanceof SyntaxError) throw new HttpError(400, 'invalid_json', `body is not JSON: ${err.message}`);
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
