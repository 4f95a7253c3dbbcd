// Who may use the console and the read API: the operator, that is a request from this machine that
// nothing relayed, or one that carries the admin token (as a Bearer token, or as the session cookie a
// sign-in with it sets). Every state-changing request a browser makes carries a CSRF token too: a page
// on another site can make the operator's browser POST to 127.0.0.1, and loopback alone would let it in.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Settings } from '../config/env.js';

export type Operator = { via: 'loopback' | 'token' | 'session' };

export const SESSION_COOKIE = 'nurture_session';
export const CSRF_COOKIE = 'nurture_csrf';
/** A sign-in lasts this long; rotating ADMIN_TOKEN ends every session at once. */
export const SESSION_SECONDS = 12 * 3600;

const digest = (s: string) => createHash('sha256').update(s).digest();
const sameText = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));
const hmac = (key: string | Buffer, text: string) => createHmac('sha256', key).update(text).digest('base64url');

const LOOPBACK = ['127.0.0.1', '::1', '::ffff:127.0.0.1'];

/** Loopback only when nothing relayed the request: behind a proxy on this host, every visitor's socket is loopback too. */
export function isLoopbackUnrelayed(req: IncomingMessage): boolean {
  const relayed = req.headers['x-forwarded-for'] !== undefined || req.headers.forwarded !== undefined || req.headers['x-real-ip'] !== undefined;
  return !relayed && LOOPBACK.includes(req.socket.remoteAddress ?? '');
}

/** The Authorization header carries the admin token (compared as digests, in constant time). */
export function hasBearerToken(req: IncomingMessage, adminToken: string | null): boolean {
  return !!adminToken && req.headers.authorization !== undefined && sameText(req.headers.authorization, `Bearer ${adminToken}`);
}

export function operatorOf(req: IncomingMessage, settings: Pick<Settings, 'adminToken'>, now = Date.now()): Operator | null {
  if (hasBearerToken(req, settings.adminToken)) return { via: 'token' };
  if (settings.adminToken && validSession(cookiesOf(req)[SESSION_COOKIE], settings.adminToken, now)) return { via: 'session' };
  if (isLoopbackUnrelayed(req)) return { via: 'loopback' };
  return null;
}

export function cookiesOf(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of String(req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i < 1) continue;
    const name = part.slice(0, i).trim();
    if (!Object.hasOwn(out, name)) out[name] = part.slice(i + 1).trim();
  }
  return out;
}

/** The session's key comes from the admin token: a new token signs nobody's old cookie. */
const sessionKey = (adminToken: string) => hmac(adminToken, 'nurture console session');

export function makeSession(adminToken: string, now = Date.now()): string {
  const body = `s1.${Math.floor(now / 1000) + SESSION_SECONDS}.${randomBytes(9).toString('base64url')}`;
  return `${body}.${hmac(sessionKey(adminToken), body)}`;
}

export function validSession(cookie: string | undefined, adminToken: string, now = Date.now()): boolean {
  if (!cookie) return false;
  const m = /^(s1\.(\d{1,12})\.[\w-]{1,40})\.([\w-]{43})$/.exec(cookie);
  if (!m) return false;
  if (!sameText(m[3]!, hmac(sessionKey(adminToken), m[1]!))) return false;
  return Number(m[2]) * 1000 > now;
}

export function isSignInToken(given: string, adminToken: string | null): boolean {
  return !!adminToken && sameText(given, adminToken);
}

/** Secure and HTTP-only, for this site only. Browsers keep Secure cookies over plain HTTP only on localhost. */
export function cookieHeader(name: string, value: string, maxAgeSeconds: number): string {
  return `${name}=${value}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=${maxAgeSeconds}`;
}

/**
 * The CSRF token for this browser: a random cookie, and in each form its MAC (under a key from the
 * tracking secret, which every install has). A form from another site can't know either.
 */
export function csrfFor(req: IncomingMessage, res: ServerResponse, secret: string): string {
  let seed = cookiesOf(req)[CSRF_COOKIE];
  if (!seed || !/^[\w-]{20,64}$/.test(seed)) {
    seed = randomBytes(24).toString('base64url');
    appendCookie(res, cookieHeader(CSRF_COOKIE, seed, 30 * 86_400));
  }
  return hmac(csrfKey(secret), seed);
}

const csrfKey = (secret: string) => hmac(secret, 'nurture console csrf');

export function validCsrf(req: IncomingMessage, given: string | undefined, secret: string): boolean {
  const seed = cookiesOf(req)[CSRF_COOKIE];
  if (!seed || !given) return false;
  return sameText(given, hmac(csrfKey(secret), seed));
}

/**
 * A browser names the page a POST came from: one from another origin is refused whatever it carries.
 * (Behind a proxy the Host may be rewritten; X-Forwarded-Host then names the site.)
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  const forwarded = String(req.headers['x-forwarded-host'] ?? '').split(',')[0]!.trim();
  return host === req.headers.host || (!!forwarded && host === forwarded);
}

export function appendCookie(res: ServerResponse, cookie: string): void {
  const prior = res.getHeader('set-cookie');
  res.setHeader('set-cookie', [...(Array.isArray(prior) ? prior : prior ? [String(prior)] : []), cookie]);
}
