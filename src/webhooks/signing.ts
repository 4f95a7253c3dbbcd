// Standard Webhooks signatures (https://www.standardwebhooks.com/): HMAC-SHA256 over the bytes
// `id.timestamp.` followed by the body's own bytes. Never over a decoded string: mail in Latin-1 (or any
// 8-bit charset) is not UTF-8, and decoding it first changes the bytes that were signed.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';

/** How far a webhook-timestamp may be from our clock, either way (the specification's 5 minutes). */
export const SIGNATURE_TOLERANCE_SECONDS = 5 * 60;

const PREFIX = 'whsec_';

function keyOf(secret: string): Buffer {
  const key = Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');
  if (!key.length) throw new Error('the webhook secret is empty');
  return key;
}

/** The `v1,<base64>` signature of `body` (a string is signed as its UTF-8 bytes). */
export function signature(secret: string, id: string, timestampSeconds: number, body: string | Uint8Array): string {
  const mac = createHmac('sha256', keyOf(secret));
  mac.update(`${id}.${timestampSeconds}.`, 'utf8');
  mac.update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
  return `v1,${mac.digest('base64')}`;
}

export function signedHeaders(secret: string, body: string | Uint8Array, opts: { id?: string; at?: Date } = {}): Record<string, string> {
  const id = opts.id ?? `msg_${randomUUID()}`;
  const seconds = Math.floor((opts.at ?? new Date()).getTime() / 1000);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(seconds),
    'webhook-signature': signature(secret, id, seconds, body),
  };
}

export interface WebhookHeaders {
  id: string;
  timestamp: string;
  signature: string;
}

export type Verdict = { ok: true } | { ok: false; reason: string };

/**
 * What can be judged before the body is read: the three headers are there and the timestamp is fresh.
 * A request that fails here is refused without reading (or holding) a byte of its body.
 */
export function checkWebhookHeaders(h: WebhookHeaders, nowMs: number): Verdict {
  if (!h.id || !h.timestamp || !h.signature) return { ok: false, reason: 'Missing required headers (webhook-id, webhook-timestamp, webhook-signature)' };
  if (!/^\d{1,12}$/.test(h.timestamp)) return { ok: false, reason: 'Invalid Signature Headers: webhook-timestamp is not a number of seconds' };
  const skew = Math.floor(nowMs / 1000) - Number(h.timestamp);
  if (skew > SIGNATURE_TOLERANCE_SECONDS) return { ok: false, reason: 'Message timestamp too old' };
  if (skew < -SIGNATURE_TOLERANCE_SECONDS) return { ok: false, reason: 'Message timestamp too new' };
  return { ok: true };
}

/** Verifies a Standard Webhooks signature over the raw body bytes, in constant time per candidate. */
export function verifyWebhook(secret: string, body: Uint8Array, h: WebhookHeaders, nowMs: number): Verdict {
  const fresh = checkWebhookHeaders(h, nowMs);
  if (!fresh.ok) return fresh;
  const expected = Buffer.from(signature(secret, h.id, Number(h.timestamp), body).slice(3), 'base64');
  // The header may carry several space-separated signatures (key rotation): any v1 one that matches will do.
  for (const candidate of h.signature.split(' ')) {
    const [version, value] = candidate.split(',');
    if (version !== 'v1' || !value) continue;
    const given = Buffer.from(value, 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return { ok: true };
  }
  return { ok: false, reason: 'No matching signature found' };
}
