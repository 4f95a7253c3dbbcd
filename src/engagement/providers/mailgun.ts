/**
 * Mailgun: webhooks (JSON `{ signature: {timestamp, token, signature}, "event-data": {…} }`) and inbound
 * routes (forward() to a URL: form fields, or the raw message in `body-mime` when the URL ends in "mime").
 *
 * Signature: hex HMAC-SHA256, keyed with the HTTP webhook signing key, over `timestamp + token`
 * concatenated without separator. The same three fields ride inbound route POSTs as top-level form
 * fields. Mailgun advises rejecting stale timestamps and tokens already seen (the latter needs storage,
 * so it's the caller's job).
 */
import { createHmac } from 'node:crypto';
import {
  MESSAGE_ID_ARG,
  MESSAGE_ROW_ARG,
  OK,
  assembleMessage,
  enhancedStatus,
  fail,
  fromUnixSeconds,
  hashId,
  isFresh,
  isObj,
  lowerEmail,
  messageIdOf,
  obj,
  rowIdOf,
  safeEqual,
  str,
  type HeaderPair,
  type ParseOptions,
  type ProviderEvent,
  type ProviderEventKind,
  type Verification,
} from './common.js';

export const MAILGUN_DEFAULT_TOLERANCE_SECONDS = 600;

export type MailgunSignature = { timestamp?: unknown; token?: unknown; signature?: unknown };

/** The signature block of a webhook body, or the same three fields of an inbound route POST. */
export function mailgunSignatureOf(bodyOrFields: unknown): MailgunSignature {
  const b = obj(bodyOrFields);
  return isObj(b.signature) ? b.signature : { timestamp: b.timestamp, token: b.token, signature: b.signature };
}

export function mailgunSignature(signingKey: string, timestamp: string, token: string): string {
  return createHmac('sha256', signingKey).update(timestamp + token).digest('hex');
}

export function verifyMailgunSignature(input: {
  signingKey: string;
  signature: MailgunSignature;
  now: Date;
  toleranceSeconds?: number;
}): Verification {
  const timestamp = str(input.signature.timestamp);
  const token = str(input.signature.token);
  const signature = str(input.signature.signature);
  if (!timestamp || !token || !signature) return fail('missing signature fields');
  if (!/^\d+$/.test(timestamp)) return fail('malformed timestamp');
  if (!isFresh(Number(timestamp), input.now, input.toleranceSeconds ?? MAILGUN_DEFAULT_TOLERANCE_SECONDS)) {
    return fail('timestamp outside tolerance');
  }
  const expected = mailgunSignature(input.signingKey, timestamp, token);
  return safeEqual(expected, signature.toLowerCase()) ? OK : fail('bad signature');
}

const SIMPLE: Record<string, ProviderEventKind> = {
  delivered: 'delivered',
  opened: 'open',
  clicked: 'click',
  complained: 'complaint',
  unsubscribed: 'unsubscribe',
  rejected: 'dropped',
};

/**
 * Permanent failures that are Mailgun refusing to send to an address on one of its suppression lists,
 * not a new bounce: the drop suppresses the address here as the original event would have.
 */
const SUPPRESSED: Record<string, NonNullable<ProviderEvent['suppresses']>> = {
  'suppress-bounce': 'bounce',
  'suppress-unsubscribe': 'unsubscribe',
  'suppress-complaint': 'complaint',
};

/** A webhook body (`{ signature, "event-data" }`) or a bare event-data object → our shape. */
export function parseMailgunEvent(body: unknown, opts: ParseOptions = {}): ProviderEvent | null {
  const b = obj(body);
  const ed = isObj(b['event-data']) ? b['event-data'] : b;
  const name = str(ed.event);
  if (!name) return null;
  const severity = str(ed.severity);
  const reason = str(ed.reason);
  let kind: ProviderEventKind | undefined = SIMPLE[name];
  if (name === 'failed') {
    kind = severity === 'temporary' ? 'deferred' : reason && Object.hasOwn(SUPPRESSED, reason) ? 'dropped' : 'bounce';
  }
  if (!kind) return null;
  const at = fromUnixSeconds(ed.timestamp);
  if (!at) return null;

  const headers = obj(obj(ed.message).headers);
  // Mailgun's message id is the Message-ID header (kept as given when sending through SMTP).
  const headerId = messageIdOf(headers['message-id']);
  const variables = obj(ed['user-variables']);
  const messageId = messageIdOf(variables[opts.messageIdArg ?? MESSAGE_ID_ARG]) ?? headerId;
  const email = lowerEmail(ed.recipient) ?? (name === 'rejected' ? lowerEmail(headers.to) : null);
  const id = str(ed.id);
  const event: ProviderEvent = {
    provider: 'mailgun',
    // event-data.id is only unique within a day, so the event's own timestamp goes with it.
    sourceId: id ? `mailgun:${id}:${str(ed.timestamp)}` : hashId('mailgun', name, headerId, email, ed.timestamp, ed.url),
    kind,
    messageId,
    providerMessageId: headerId,
    // X-Mailgun-Variables (JSON) on the way out come back as event-data.user-variables.
    messageRowId: rowIdOf(variables[MESSAGE_ROW_ARG]),
    email,
    at,
    raw: body,
  };
  if (kind === 'dropped' && reason && Object.hasOwn(SUPPRESSED, reason)) event.suppresses = SUPPRESSED[reason]!;
  if (kind === 'bounce' || kind === 'deferred' || kind === 'dropped') {
    const ds = obj(ed['delivery-status']);
    const diagnostic = str(ds.message) ?? str(ds.description) ?? str(obj(ed.reject).reason) ?? reason;
    event.bounce = {
      // "old" is Mailgun giving up after retrying: final for this message, says nothing about the address.
      permanent: kind !== 'deferred' && reason !== 'old',
      status: enhancedStatus(ds['enhanced-code'], ds.message, ds.description),
      diagnostic,
    };
  }
  if (kind === 'open' || kind === 'click') {
    event.userAgent = str(obj(ed['client-info'])['user-agent']);
    event.ip = str(ed.ip);
  }
  if (kind === 'click') event.url = str(ed.url);
  return event;
}

function headerPairs(json: string | undefined): HeaderPair[] {
  if (!json) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  return parsed.flatMap((pair) => {
    if (!Array.isArray(pair)) return [];
    const [name, value] = pair as unknown[];
    return typeof name === 'string' && typeof value === 'string' ? [[name, value] as HeaderPair] : [];
  });
}

/**
 * Inbound route fields → an RFC 5322 message: `body-mime` as is (the MIME endpoint), else rebuilt from
 * `message-headers` (a JSON list of [name, value]) and the decoded `body-plain` / `body-html`.
 */
export function mailgunInboundToRaw(fields: Record<string, string | undefined>): string {
  const mime = fields['body-mime'];
  if (mime && mime.trim()) return mime;
  return assembleMessage({
    headers: headerPairs(fields['message-headers']),
    ensure: [
      ['From', fields.from ?? ''],
      ['To', fields.To ?? fields.recipient ?? ''],
      ['Subject', fields.subject ?? ''],
    ],
    text: fields['body-plain'] ?? null,
    html: fields['body-html'] ?? null,
  });
}
