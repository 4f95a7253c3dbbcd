// The web console's routes: each reads with one use case (the same ones the read API and the CLI call)
// and renders a page, or does one action (a POST with a CSRF token) and redirects back with what happened.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../../context.js';
import { accountView, listAccounts } from '../../usecases/accountView.js';
import { activityQuery, readActivity } from '../../usecases/activityFeed.js';
import { exitLead } from '../../usecases/enrollLead.js';
import { UseCaseError } from '../../usecases/errors.js';
import { findLeads, leadTimeline } from '../../usecases/leadTimeline.js';
import { MessageActionError, needsAPerson, releaseUncertain } from '../../usecases/messages.js';
import { queueHealth } from '../../usecases/queueHealth.js';
import { releaseDeferred } from '../../usecases/releaseStep.js';
import { resubscribeLead } from '../../usecases/resubscribe.js';
import { sequencesView } from '../../usecases/sequencesView.js';
import { appendCookie, cookieHeader, cookiesOf, csrfFor, isSignInToken, makeSession, operatorOf, sameOrigin, SESSION_COOKIE, SESSION_SECONDS, validCsrf, type Operator } from '../access.js';
import { readBody, type BodyBudget, type BodyLimits } from '../body.js';
import { clientIp } from '../clientIp.js';
import { HttpError } from '../respond.js';
import { CONSOLE_CSS, CONSOLE_JS } from './assets.js';
import * as view from './views.js';

export interface ConsoleDeps {
  ctx: Context;
  limits: BodyLimits;
  budget: BodyBudget;
}

const FLASH_COOKIE = 'nurture_flash';
const UUID_SETTLE = /^\/messages\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/settle$/;

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

const PAGES = /^\/(?:|leads|leads\/[^/]+|accounts|accounts\/[^/]+|sequences|attention|queues|messages\/[\w-]+\/settle|login)$/;

/** Whether `path` is the console's; the server asks before its own 404. */
export function isConsolePath(path: string, method: string): boolean {
  if (path === '/console.css' || path === '/console.js') return method === 'GET' || method === 'HEAD';
  if (method === 'GET' || method === 'HEAD') return PAGES.test(path);
  if (method === 'POST') return path === '/login' || path === '/logout' || /^\/leads\/[^/]+\/(exit|release|resubscribe)$/.test(path) || /^\/messages\/[\w-]+\/settle$/.test(path);
  return false;
}

function sendPage(res: ServerResponse, status: number, page: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(page), ...SECURITY_HEADERS, ...headers });
  res.end(page);
}

function redirect(res: ServerResponse, to: string): void {
  res.writeHead(303, { location: to, 'cache-control': 'no-store' });
  res.end();
}

function flash(res: ServerResponse, text: string, error = false): void {
  appendCookie(res, cookieHeader(FLASH_COOKIE, Buffer.from(JSON.stringify({ text: text.slice(0, 600), error })).toString('base64url'), 60));
}

function takeFlash(req: IncomingMessage, res: ServerResponse): view.Chrome['notice'] {
  const raw = cookiesOf(req)[FLASH_COOKIE];
  if (!raw) return null;
  appendCookie(res, cookieHeader(FLASH_COOKIE, '', 0));
  try {
    const f = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { text?: unknown; error?: unknown };
    return typeof f.text === 'string' ? { text: f.text, error: f.error === true } : null;
  } catch {
    return null;
  }
}

/** A local path to go back to after signing in: never another site (//evil.example, /\evil.example). */
const safeNext = (next: string | null) => (next && /^\/(?![/\\])[\x21-\x7e]*$/.test(next) ? next : '/');

function segment(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpError(400, 'invalid_path', `the ${what} in this URL is not valid percent-encoding`, what);
  }
}

export async function consoleRoute(deps: ConsoleDeps, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const { ctx } = deps;
  const path = url.pathname;
  const method = req.method ?? 'GET';
  if (path === '/console.css' || path === '/console.js') {
    const css = path.endsWith('.css');
    const text = css ? CONSOLE_CSS : CONSOLE_JS;
    res.writeHead(200, { 'content-type': `${css ? 'text/css' : 'text/javascript'}; charset=utf-8`, 'content-length': Buffer.byteLength(text), 'cache-control': 'public, max-age=300', 'x-content-type-options': 'nosniff' });
    return void res.end(method === 'HEAD' ? undefined : text);
  }
  const secret = ctx.settings.trackingSecret;
  const operator = operatorOf(req, ctx.settings);

  if (path === '/login') {
    const csrf = csrfFor(req, res, secret);
    if (method === 'POST') {
      const form = await readForm(deps, req, res);
      if (!sameOrigin(req) || !validCsrf(req, form.get('_csrf') ?? undefined, secret)) throw new HttpError(403, 'csrf', 'this form is stale or came from another site: reload the page and try again');
      const next = safeNext(form.get('next'));
      if (!isSignInToken(form.get('token') ?? '', ctx.settings.adminToken)) {
        console.warn(`[console] a sign-in with a wrong token from ${clientIp(req, ctx.settings.trustedProxies) ?? 'unknown'}`);
        return sendPage(res, 401, view.signInPage({ next, tokenConfigured: !!ctx.settings.adminToken, failed: true, csrf }));
      }
      appendCookie(res, cookieHeader(SESSION_COOKIE, makeSession(ctx.settings.adminToken!), SESSION_SECONDS));
      return redirect(res, next);
    }
    if (operator) return redirect(res, safeNext(url.searchParams.get('next')));
    return sendPage(res, 200, view.signInPage({ next: safeNext(url.searchParams.get('next')), tokenConfigured: !!ctx.settings.adminToken, csrf }));
  }

  if (!operator) {
    // A visitor: refused, and shown how to sign in.
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(403, 'forbidden', 'the console is for the operator: sign in with the admin token');
    const csrf = csrfFor(req, res, secret);
    return sendPage(res, 401, view.signInPage({ next: safeNext(path + url.search), tokenConfigured: !!ctx.settings.adminToken, csrf }));
  }

  if (method === 'POST') return action(deps, operator, req, res, url);

  const csrf = csrfFor(req, res, secret);
  const chrome: view.Chrome = { csrf, via: operator.via, notice: takeFlash(req, res) };
  let m: RegExpExecArray | null;
  try {
    if (path === '/') {
      const { filter, page } = activityQuery(url.searchParams);
      const p = await readActivity(ctx.db, filter, { ...(page.before !== undefined ? { before: page.before } : {}), limit: page.limit ?? 100 }, ctx.config.funnel.defaults.timeZone);
      const stream = `/v1/activity/stream?${new URLSearchParams({ ...view.filterParams(filter), view: 'rows', after: String(page.before !== undefined ? Math.max(p.next ?? 0, page.before) : (p.next ?? 0)) }).toString()}`;
      return sendPage(res, 200, view.liveLogPage(p, filter, stream, chrome));
    }
    if (path === '/leads') {
      const q = (url.searchParams.get('q') ?? '').trim();
      const found = await findLeads(ctx, q);
      if (found.length === 1 && found[0]!.email === q.toLowerCase()) return redirect(res, `/leads/${encodeURIComponent(found[0]!.email)}`);
      return sendPage(res, 200, view.leadSearchPage(q, found, chrome));
    }
    if ((m = /^\/leads\/([^/]+)$/.exec(path))) return sendPage(res, 200, view.leadPage(await leadTimeline(ctx, segment(m[1]!, 'lead')), chrome));
    if (path === '/accounts') {
      const { accounts, next } = await listAccounts(ctx, url.searchParams.get('after'), 100);
      return sendPage(res, 200, view.accountsPage(accounts, next, chrome));
    }
    if ((m = /^\/accounts\/([^/]+)$/.exec(path))) return sendPage(res, 200, view.accountPage(await accountView(ctx, segment(m[1]!, 'domain')), chrome));
    if (path === '/sequences') return sendPage(res, 200, view.sequencesPage(await sequencesView(ctx), chrome));
    if (path === '/attention') return sendPage(res, 200, view.attentionPage(await needsAPerson(ctx), chrome));
    if (path === '/queues') return sendPage(res, 200, view.queuesPage(await queueHealth(ctx), chrome));
    if ((m = UUID_SETTLE.exec(path))) {
      const decision = url.searchParams.get('decision');
      if (decision !== 'resend' && decision !== 'mark_sent') throw new UseCaseError('invalid_field', 'decision must be resend or mark_sent', 'decision');
      const all = await needsAPerson(ctx);
      const msg = all.uncertain.find((x) => x.id === m![1]);
      if (!msg) return sendPage(res, 404, view.errorPage('Nothing to settle', 'This message is not uncertain (any more): someone may have settled it already.', chrome));
      return sendPage(res, 200, view.settleConfirmPage(msg, decision, chrome));
    }
  } catch (err) {
    if (err instanceof UseCaseError) return sendPage(res, err.status === 422 ? 400 : err.status, view.errorPage(err.status === 404 ? 'Not found' : 'Cannot show that', err.message, chrome));
    throw err;
  }
  throw new HttpError(404, 'not_found', `no page at ${path}`);
}

async function readForm(deps: ConsoleDeps, req: IncomingMessage, res: ServerResponse): Promise<URLSearchParams> {
  const body = await readBody(req, res, deps.limits.small, deps.budget);
  return new URLSearchParams(body.toString('utf8'));
}

async function action(deps: ConsoleDeps, operator: Operator, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const { ctx } = deps;
  const path = url.pathname;
  const form = await readForm(deps, req, res);
  // A Bearer token is not something a browser sends on its own: such a caller needs no CSRF token.
  if (operator.via !== 'token' && (!sameOrigin(req) || !validCsrf(req, form.get('_csrf') ?? undefined, ctx.settings.trackingSecret))) {
    throw new HttpError(403, 'csrf', 'this form is stale or came from another site: reload the page and try again');
  }
  if (path === '/logout') {
    appendCookie(res, cookieHeader(SESSION_COOKIE, '', 0));
    return redirect(res, '/login');
  }
  const ip = clientIp(req, ctx.settings.trustedProxies);
  const by = `the console (${operator.via}${ip ? ` from ${ip}` : ''})`;
  let m: RegExpExecArray | null;
  let back = '/';
  try {
    if ((m = /^\/leads\/([^/]+)\/(exit|release|resubscribe)$/.exec(path))) {
      const email = segment(m[1]!, 'lead');
      back = `/leads/${encodeURIComponent(email.trim().toLowerCase())}`;
      if (m[2] === 'exit') {
        if (form.get('confirm') !== 'yes') throw new UseCaseError('invalid_field', 'tick the box to confirm the exit', 'confirm');
        const sequence = form.get('sequence') || undefined;
        const { exited } = await exitLead(ctx, email, sequence);
        flash(res, `${exited} enrollment(s) exited${sequence ? ` from ${sequence}` : ''}`);
      } else if (m[2] === 'release') {
        const step = form.get('step') || undefined;
        const { released } = await releaseDeferred(ctx, email, { ...(step ? { step } : {}), reason: form.get('reason') ?? '', by });
        flash(res, released.length ? `${released.map((r) => `${r.sequence}/${r.step}`).join(', ')} released: it goes out now` : 'nothing released (a value-first gate still holds the step)', !released.length);
      } else {
        const r = await resubscribeLead(ctx, email, { reason: form.get('reason') ?? '', by });
        flash(res, `${r.email} resubscribed (was ${r.was})`);
      }
      return redirect(res, back);
    }
    if ((m = UUID_SETTLE.exec(path))) {
      back = '/attention';
      const decision = form.get('decision');
      if (decision !== 'resend' && decision !== 'mark_sent') throw new UseCaseError('invalid_field', 'decision must be resend or mark_sent', 'decision');
      const msg = await releaseUncertain(ctx, m[1]!, decision, by);
      flash(res, decision === 'resend' ? `message to ${msg.email} queued again (same Message-ID)` : `message to ${msg.email} marked sent`);
      return redirect(res, back);
    }
  } catch (err) {
    if (err instanceof UseCaseError || err instanceof MessageActionError) {
      flash(res, err.message, true);
      return redirect(res, back);
    }
    throw err;
  }
  throw new HttpError(404, 'not_found', `no action at ${path}`);
}
