/**
 * Shared shape and helpers for email service providers' event webhooks and inbound formats.
 * Pure: no I/O. node:crypto only for hashing and signature checks.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { normaliseMessageId } from '../bounces.js';

export type ProviderName = 'sendgrid' | 'postmark' | 'mailgun' | 'ses';

export type ProviderEventKind =
  | 'delivered'
  | 'open'
  | 'click'
  | 'bounce'
  | 'complaint'
  | 'unsubscribe'
  | 'deferred'
  | 'dropped';

export type ProviderEvent = {
  provider: ProviderName;
  /** Stable id for idempotency: the provider's own event id where it has one, else a hash of the event. */
  sourceId: string;
  kind: ProviderEventKind;
  /** Our RFC Message-ID (without brackets) when the provider echoes it, e.g. from headers or custom args. */
  messageId: string | null;
  /** The provider's own message id (e.g. sg_message_id, Postmark MessageID, SES mail.messageId). */
  providerMessageId: string | null;
  /** Our message row id, from the custom argument we set on the way out (see MESSAGE_ROW_ARG). */
  messageRowId: string | null;
  email: string | null;
  at: Date;
  bounce?: { permanent: boolean; status: string | null; diagnostic: string | null };
  /**
   * A `dropped` event whose reason is the address being on one of the provider's suppression lists:
   * what put it there, so the drop suppresses the address here as that event would have.
   */
  suppresses?: 'bounce' | 'unsubscribe' | 'complaint';
  /** The provider itself says the open was a machine's (SendGrid `sg_machine_open`, Apple's proxy). */
  machineOpen?: boolean;
  url?: string | null;
  userAgent?: string | null;
  ip?: string | null;
  raw: unknown;
};

/**
 * The custom-argument / metadata / user-variable name under which nurture puts its own Message-ID
 * when sending through a provider whose events don't echo the Message-ID header:
 * SendGrid `X-SMTPAPI: {"unique_args":{"nurture_message_id":"…"}}`, Postmark `X-PM-Metadata-nurture_message_id`,
 * Mailgun `X-Mailgun-Variables: {"nurture_message_id":"…"}`.
 */
export const MESSAGE_ID_ARG = 'nurture_message_id';

/**
 * The custom argument nurture sets on every message sent through a known provider's relay: our message
 * row id (a UUID, which fits every provider's rules: SES tag values allow only letters, digits, `_` and
 * `-`; Postmark metadata keys are at most 20 characters). Events carry it back, so they attach to the
 * exact message even when the provider rewrote the Message-ID (SES does) or the address got several.
 */
export const MESSAGE_ROW_ARG = 'nurture_message';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A message row id from a custom argument (a string, or the first of a list as SES tags give it), else null. */
export function rowIdOf(v: unknown): string | null {
  const s = str(Array.isArray(v) ? v[0] : v)?.trim();
  return s && UUID.test(s) ? s.toLowerCase() : null;
}

/**
 * The part of a provider's message id that names our message as submitted. SendGrid's events give
 * `sg_message_id` as the X-Message-Id its relay answered with, a dot, and a per-recipient suffix
 * (`….filterdrecv-…`, `….recvd-…`); SendGrid's own Email Activity search matches on that prefix.
 * Other providers' ids are used whole.
 */
export function providerMessageKey(provider: ProviderName, id: string | null | undefined): string | null {
  const s = id?.trim();
  if (!s) return null;
  if (provider === 'sendgrid') return s.split('.')[0] || null;
  return s;
}

export type ParseOptions = {
  /** Name of the custom arg / metadata key that carries our Message-ID (default MESSAGE_ID_ARG). */
  messageIdArg?: string;
};

export type Verification = { ok: true } | { ok: false; reason: string };

export const fail = (reason: string): Verification => ({ ok: false, reason });
export const OK: Verification = { ok: true };

// ---- small readers over untrusted JSON -------------------------------------------------------

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function obj(v: unknown): Obj {
  return isObj(v) ? v : {};
}

/** A non-empty string, or a finite number as a string; else null. */
export function str(v: unknown): string | null {
  if (typeof v === 'string') return v.length ? v : null;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

export function lowerEmail(v: unknown): string | null {
  const s = str(v)?.trim();
  if (!s) return null;
  // "Name <a@b>" → a@b
  const m = /<([^<>@\s]+@[^<>\s]+)>/.exec(s);
  return (m?.[1] ?? s).toLowerCase();
}

export function messageIdOf(v: unknown): string | null {
  return normaliseMessageId(str(v));
}

/** Unix seconds (number or numeric string, fractions allowed) → Date. */
export function fromUnixSeconds(v: unknown): Date | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() ? Number(v) : NaN;
  if (!Number.isFinite(n)) return null;
  return new Date(Math.round(n * 1000));
}

/** ISO 8601 (any number of fraction digits, any offset) → Date. */
export function fromIso(v: unknown): Date | null {
  const s = str(v);
  if (!s) return null;
  // Postmark sends 7 fraction digits ("…:10.2735393-04:00"); keep milliseconds so every engine parses it.
  const trimmed = s.replace(/(\.\d{3})\d+/, '$1');
  const d = new Date(trimmed);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** An RFC 3463 enhanced status code (e.g. 5.1.1) found in an SMTP reply or diagnostic. */
export function enhancedStatus(...texts: unknown[]): string | null {
  for (const t of texts) {
    const s = str(t);
    if (!s) continue;
    const m = /(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])/.exec(s);
    if (m) return `${m[1]}.${m[2]}.${m[3]}`;
  }
  return null;
}

/** "provider:" + sha256 over a canonical rendering of the given parts: for events without their own id. */
export function hashId(provider: ProviderName, ...parts: unknown[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(JSON.stringify(p ?? null)).update('\u0000');
  return `${provider}:h:${h.digest('hex').slice(0, 40)}`;
}

/** Constant-time equality of two strings (false for different lengths, without leaking where they differ). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ab.length !== bb.length) {
    // Still spend the comparison so the length mismatch isn't a faster path to probe.
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** Is `at` (unix seconds) within `toleranceSeconds` of `now`, either side? */
export function isFresh(atSeconds: number, now: Date, toleranceSeconds: number): boolean {
  return Number.isFinite(atSeconds) && Math.abs(now.getTime() / 1000 - atSeconds) <= toleranceSeconds;
}

// ---- rebuilding an RFC 5322 message from parsed parts -----------------------------------------

export type HeaderPair = [name: string, value: string];

/** Headers that describe the original MIME structure: dropped when we re-assemble the body ourselves. */
const STRUCTURAL = new Set(['content-type', 'content-transfer-encoding', 'mime-version', 'content-disposition']);

/** Split a raw header block ("Name: value\r\n\tfolded…") into pairs, keeping folded values joined. */
export function splitHeaderBlock(block: string): HeaderPair[] {
  const out: HeaderPair[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (!line) continue;
    if (/^[ \t]/.test(line) && out.length) {
      const last = out[out.length - 1]!;
      last[1] += `\r\n${line}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    out.push([line.slice(0, colon).trim(), line.slice(colon + 1).replace(/^[ \t]/, '')]);
  }
  return out;
}

function base64Lines(text: string): string {
  return (Buffer.from(text, 'utf8').toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

function part(type: 'plain' | 'html', body: string): string {
  return `Content-Type: text/${type}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64Lines(body)}\r\n`;
}

/**
 * An RFC 5322 message from header pairs and decoded bodies. Structural headers of the original are
 * replaced by our own; the bodies are base64 so any line length or charset survives. A header whose
 * name is in `ensure` but missing from `headers` is added (e.g. From/To/Subject that a provider gives
 * as separate fields).
 */
export function assembleMessage(opts: {
  headers: HeaderPair[];
  ensure?: HeaderPair[];
  text?: string | null;
  html?: string | null;
  boundarySeed?: string;
}): string {
  const kept = opts.headers.filter(([n]) => !STRUCTURAL.has(n.toLowerCase()));
  const have = new Set(kept.map(([n]) => n.toLowerCase()));
  for (const [n, v] of opts.ensure ?? []) {
    if (v && !have.has(n.toLowerCase())) {
      kept.push([n, v.replace(/\r?\n/g, ' ')]);
      have.add(n.toLowerCase());
    }
  }
  const head = kept.map(([n, v]) => `${n}: ${v}`).join('\r\n');
  const text = opts.text ?? '';
  const html = opts.html ?? '';
  if (text && html) {
    const boundary = `=_nurture_${createHash('sha256')
      .update(opts.boundarySeed ?? text + html)
      .digest('hex')
      .slice(0, 24)}`;
    return (
      `${head}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="${boundary}"\r\n\r\n` +
      `--${boundary}\r\n${part('plain', text)}--${boundary}\r\n${part('html', html)}--${boundary}--\r\n`
    );
  }
  return `${head}\r\nMIME-Version: 1.0\r\n${part(html && !text ? 'html' : 'plain', html && !text ? html : text)}`;
}
