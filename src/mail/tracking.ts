// Signed tracking tokens. A token names a message row and carries an HMAC, so a tampered or invented
// link is refused, and a click's destination comes from the message row, never from the URL: no open redirect.
import { createHmac, timingSafeEqual } from 'node:crypto';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function mac(secret: string, purpose: string, payload: string): string {
  return createHmac('sha256', secret).update(`${purpose}.${payload}`).digest('base64url').slice(0, 22);
}

export type TokenPurpose = 'track' | 'unsubscribe' | 'preferences';

export function signToken(secret: string, purpose: TokenPurpose, messageId: string): string {
  const id = Buffer.from(messageId.replace(/-/g, ''), 'hex').toString('base64url');
  return `${id}.${mac(secret, purpose, messageId)}`;
}

/** The message row id the token names, or null when the token is malformed or its signature is wrong. */
export function verifyToken(secret: string, purpose: TokenPurpose, token: string): string | null {
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
  /** The preference page: pause, only the rep's mail, or nothing. */
  preferences: string;
}

export function trackingUrls(publicUrl: string, secret: string, messageId: string): TrackingUrls {
  const base = publicUrl.replace(/\/$/, '');
  const track = signToken(secret, 'track', messageId);
  return {
    pixel: `${base}/t/o/${track}.gif`,
    click: (linkId) => `${base}/t/c/${track}/${encodeURIComponent(linkId)}`,
    unsubscribe: `${base}/u/${signToken(secret, 'unsubscribe', messageId)}`,
    preferences: `${base}/p/${signToken(secret, 'preferences', messageId)}`,
  };
}

/**
 * A reply address that names its message: `reply+<hex id><hex mac>@<inbound domain>`. Hex only, because
 * some mail systems lower-case the local part on the way.
 */
export function replyAddress(secret: string, messageId: string, domain: string): string {
  return `reply+${addressToken(secret, 'reply', messageId)}@${domain}`;
}

/**
 * The per-message envelope sender (VERP): `bounce+<hex id><hex mac>@<domain>`, the SMTP MAIL FROM and so
 * the Return-Path. Bounces (and RFC 3834 auto-replies, which answer the Return-Path) come back to it and
 * name their message, while the visible From and Reply-To stay the rep's. Same token shape as the reply
 * address, with its own purpose in the MAC.
 */
export function bounceAddress(secret: string, messageId: string, domain: string): string {
  return `bounce+${addressToken(secret, 'bounce', messageId)}@${domain}`;
}

export type AddressPurpose = 'reply' | 'bounce';

function addressToken(secret: string, purpose: AddressPurpose, messageId: string): string {
  const hex = messageId.replace(/-/g, '');
  return `${hex}${createHmac('sha256', secret).update(`${purpose}.${messageId}`).digest('hex').slice(0, 16)}`;
}

/**
 * The message row named by a signed reply or bounce address among `addresses`, and which kind of address
 * it was; null when none verifies. Finds the token anywhere in an address, so an SRS-rewritten envelope
 * (`SRS0=…=bounce+<token>@forwarder`) still names its message.
 */
export function messageFromTokenAddress(secret: string, addresses: string[]): { id: string; purpose: AddressPurpose } | null {
  for (const a of addresses) {
    for (const m of a.matchAll(/(reply|bounce)\+([0-9a-f]{48})(?![0-9a-f])/gi)) {
      const purpose = m[1]!.toLowerCase() as AddressPurpose;
      const token = m[2]!.toLowerCase();
      const hex = token.slice(0, 32);
      const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
      const expected = addressToken(secret, purpose, id);
      if (expected.length === token.length && timingSafeEqual(Buffer.from(expected), Buffer.from(token))) return { id, purpose };
    }
  }
  return null;
}

/** The message row named by a reply address among `addresses`, or null. */
export function messageFromReplyAddress(secret: string, addresses: string[]): string | null {
  const found = messageFromTokenAddress(secret, addresses);
  return found?.purpose === 'reply' ? found.id : null;
}
