// The read API: JSON for the operator (loopback, the admin token as a Bearer token, or a console session).
// Each route parses its query (a bad field is a 400 naming it), calls the one use case the console and the
// CLI call too, and answers with what it returned.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../context.js';
import { accountView, listAccounts } from '../usecases/accountView.js';
import { activityQuery, readActivity, type ActivityTail } from '../usecases/activityFeed.js';
import { leadTimeline } from '../usecases/leadTimeline.js';
import { messagesQuery, pageMessages } from '../usecases/messages.js';
import { queueHealth } from '../usecases/queueHealth.js';
import { sequencesView } from '../usecases/sequencesView.js';
import { parseSince } from '../usecases/stats.js';
import { UseCaseError } from '../usecases/errors.js';
import { operatorOf } from './access.js';
import { metricsText, METRICS_CONTENT_TYPE } from './metrics.js';
import { HttpError, sendJson } from './respond.js';
import { streamActivity } from './sse.js';
import type { ProcessMetrics } from '../metrics.js';

const READS = /^\/v1\/(leads\/[^/]+|accounts|accounts\/[^/]+|messages|activity|activity\/stream|sequences|queues)$/;

export const isReadApiPath = (path: string, method: string) => (method === 'GET' || method === 'HEAD') && (READS.test(path) || path === '/metrics');

function segment(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpError(400, 'invalid_path', `the ${what} in this URL is not valid percent-encoding`, what);
  }
}

/** A bad query is the caller's to fix: 400 with the field, whatever status the use case gives the same code elsewhere. */
function asBadRequest(err: unknown): never {
  if (err instanceof UseCaseError && err.code === 'invalid_field') throw new HttpError(400, 'invalid_query', err.message, err.field);
  if (err instanceof UseCaseError && err.code === 'invalid_email') throw new HttpError(400, 'invalid_query', err.message, err.field);
  throw err;
}

export async function readApiRoute(ctx: Context, tail: ActivityTail, processMetrics: ProcessMetrics | null, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const path = url.pathname;
  if (!operatorOf(req, ctx.settings)) {
    throw new HttpError(403, 'forbidden', `${path === '/metrics' ? 'metrics are' : 'the read API is'} available from this machine, or with the admin token as a Bearer token`);
  }
  if (path === '/metrics') {
    const text = await metricsText(ctx, processMetrics);
    res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    return void res.end(text);
  }
  const q = url.searchParams;
  let m: RegExpExecArray | null;
  try {
    if ((m = /^\/v1\/leads\/([^/]+)$/.exec(path))) return sendJson(res, 200, await leadTimeline(ctx, segment(m[1]!, 'email')));
    if (path === '/v1/accounts') {
      const limit = q.get('limit');
      if (limit !== null && (!/^\d{1,3}$/.test(limit) || Number(limit) < 1 || Number(limit) > 500)) throw new UseCaseError('invalid_field', 'limit must be a number from 1 to 500', 'limit');
      const after = q.get('after');
      if (after !== null && !/^[\w.@-]{1,253}$/.test(after)) throw new UseCaseError('invalid_field', 'after must be the `next` value of an earlier page', 'after');
      return sendJson(res, 200, await listAccounts(ctx, after, limit ? Number(limit) : 100));
    }
    if ((m = /^\/v1\/accounts\/([^/]+)$/.exec(path))) return sendJson(res, 200, await accountView(ctx, segment(m[1]!, 'domain')));
    if (path === '/v1/messages') return sendJson(res, 200, await pageMessages(ctx, messagesQuery(q, ctx.now())));
    if (path === '/v1/activity') {
      const { filter, page } = activityQuery(q);
      if (page.after !== undefined && page.before !== undefined) throw new UseCaseError('invalid_field', 'give after (read on) or before (read back), not both', 'before');
      return sendJson(res, 200, await readActivity(ctx.db, filter, page, ctx.config.funnel.defaults.timeZone));
    }
    if (path === '/v1/activity/stream') {
      const v = q.get('view');
      if (v !== null && v !== 'json' && v !== 'rows') throw new UseCaseError('invalid_field', 'view must be json (the default) or rows (rendered for the console)', 'view');
      return await streamActivity(ctx, tail, req, res, url, v === 'rows' ? 'rows' : 'json');
    }
    if (path === '/v1/sequences') {
      const since = q.get('since');
      const sequence = q.get('sequence');
      if (sequence !== null && !/^[\w-]{1,200}$/.test(sequence)) throw new UseCaseError('invalid_field', 'sequence must be a sequence id (letters, digits, "-" and "_")', 'sequence');
      return sendJson(res, 200, { sequences: await sequencesView(ctx, { ...(since ? { since: parseSince(since, ctx.now()) } : {}), ...(sequence ? { sequence } : {}) }) });
    }
    if (path === '/v1/queues') return sendJson(res, 200, await queueHealth(ctx));
  } catch (err) {
    asBadRequest(err);
  }
  throw new HttpError(404, 'not_found', `no route for GET ${path}`);
}
