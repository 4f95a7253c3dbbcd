// Signed tracking tokens. A token names a message row and carries an HMAC, so a tampered or invented
// link is refused, and a click's destination comes from the message row, never from the URL: no open redirect.
import { createHmac, timingSafeEqual } from 'node:crypto';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function mac(secret: string, purpose: string, payload: string): string {
  return createHmac('sha256', secret).update(`${purpose}.${payload}`).digest('base64url').slice(0, 22);
}

export function signToken(secret: string, purpose: 'track' | 'unsubscribe', messageId: string): string {
  const id = Buffer.from(messageId.replace(/-/g, ''), 'hex').toString('base64url');
  return `${id}.${mac(secret, purpose, messageId)}`;
}

/** The message row id the token names, or null when the token is malformed or its signature is wrong. */
export function verifyToken(secret: string, purpose: 'track' | 'unsubscribe', token: string): string | null {
  const [id, sig] = token.split('.');
  if (!id || !sig || id.length !== 22) return null;
  const bytes = Buffer.from(id, 'base64url');
  // Only the canonical spelling: base64's spare bits would otherwise let one id have several tokens.
  if (bytes.length !== 16 || bytes.toString('base64url') !== id) return null;
  const hex = bytes.toString('hex');
  const messageId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  if (!UUID.test(messageId)) return null;
  const expected = Buffer.from(mac(secret, purpose, messageId));
  const given = Buffer.from(sig);
  return expected.length === given.length && timingSafeEqual(expected, given) ? messageId : null;
}

export interface TrackingUrls {
  pixel: string;
  click(linkId: string): string;
  unsubscribe: string;
}

export function trackingUrls(publicUrl: string, secret: string, messageId: string): TrackingUrls {
  const base = publicUrl.replace(/\/$/, '');
  const track = signToken(secret, 'track', messageId);
  return {
    pixel: `${base}/t/o/${track}.gif`,
    click: (linkId) => `${base}/t/c/${track}/${encodeURIComponent(linkId)}`,
    unsubscribe: `${base}/u/${signToken(secret, 'unsubscribe', messageId)}`,
  };
}

/**
 * A reply address that names its message: `reply+<hex id><hex mac>@<inbound domain>`. Hex only, because
 * some mail systems lower-case the local part on the way.
 */
export function replyAddress(secret: string, messageId: string, domain: string): string {
  return `reply+${replyToken(secret, messageId)}@${domain}`;
}

function replyToken(secret: string, messageId: string): string {
  const hex = messageId.replace(/-/g, '');
  return `${hex}${createHmac('sha256', secret).update(`reply.${messageId}`).digest('hex').slice(0, 16)}`;
}

/** The message row named by a reply address among `addresses`, or null. */
export function messageFromReplyAddress(secret: string, addresses: string[]): string | null {
  for (const a of addresses) {
    const m = /\+([0-9a-f]{48})@/i.exec(a);
    if (!m) continue;
    const token = m[1]!.toLowerCase();
    const hex = token.slice(0, 32);
    const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    const expected = replyToken(secret, id);
    if (expected.length === token.length && timingSafeEqual(Buffer.from(expected), Buffer.from(token))) return id;
  }
  return null;
}
