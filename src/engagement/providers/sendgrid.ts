/**
 * Twilio SendGrid: Event Webhook (a JSON array of events) and Inbound Parse (multipart/form-data fields).
 *
 * Signed Event Webhook: SendGrid signs `timestamp + rawBody` with ECDSA (P-256, SHA-256). The signature
 * (base64 of the ASN.1/DER ECDSA signature) is in `X-Twilio-Email-Event-Webhook-Signature`, the timestamp
 * (unix seconds, as sent) in `X-Twilio-Email-Event-Webhook-Timestamp`; the verification key shown under
 * Mail Settings is a base64 DER SubjectPublicKeyInfo. The body must be the exact bytes received.
 */
import { verify } from 'node:crypto';
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
  rowIdOf,
  splitHeaderBlock,
  str,
  type ParseOptions,
  type ProviderEvent,
  type ProviderEventKind,
  type Verification,
} from './common.js';

export const SENDGRID_SIGNATURE_HEADER = 'x-twilio-email-event-webhook-signature';
export const SENDGRID_TIMESTAMP_HEADER = 'x-twilio-email-event-webhook-timestamp';

/** SendGrid documents no replay window; ten minutes either side, and sg_event_id dedupes the rest. */
export const SENDGRID_DEFAULT_TOLERANCE_SECONDS = 600;

function publicKeyInput(publicKey: string) {
  const trimmed = publicKey.trim();
  if (trimmed.startsWith('-----BEGIN')) return { key: trimmed, format: 'pem' as const };
  return { key: Buffer.from(trimmed.replace(/\s+/g, ''), 'base64'), format: 'der' as const, type: 'spki' as const };
}

/**
 * Verifies a Signed Event Webhook request. `publicKey` is the base64 DER key from SendGrid's settings
 * (a PEM "PUBLIC KEY" block is accepted too). `rawBody` must be the body exactly as received.
 */
export function verifySendgridSignature(input: {
  publicKey: string;
  rawBody: string | Buffer;
  signature: string | null | undefined;
  timestamp: string | null | undefined;
  now: Date;
  toleranceSeconds?: number;
}): Verification {
  const { signature, timestamp } = input;
  if (!signature) return fail('missing signature header');
  if (!timestamp) return fail('missing timestamp header');
  if (!/^\d+$/.test(timestamp.trim())) return fail('malformed timestamp');
  if (!isFresh(Number(timestamp), input.now, input.toleranceSeconds ?? SENDGRID_DEFAULT_TOLERANCE_SECONDS)) {
    return fail('timestamp outside tolerance');
  }
  const body = typeof input.rawBody === 'string' ? Buffer.from(input.rawBody, 'utf8') : input.rawBody;
  const payload = Buffer.concat([Buffer.from(timestamp, 'utf8'), body]);
  try {
    const ok = verify('sha256', payload, publicKeyInput(input.publicKey), Buffer.from(signature, 'base64'));
    return ok ? OK : fail('bad signature');
  } catch {
    return fail('bad key or signature encoding');
  }
}

const KIND: Record<string, ProviderEventKind> = {
  delivered: 'delivered',
  open: 'open',
  click: 'click',
  bounce: 'bounce',
  dropped: 'dropped',
  deferred: 'deferred',
  spamreport: 'complaint',
  unsubscribe: 'unsubscribe',
  group_unsubscribe: 'unsubscribe',
};

/**
 * `dropped` reasons that mean the address is on one of SendGrid's suppression lists (its documentation
 * on drops: "Bounced Address", "Unsubscribed Address", "Spam Reporting Address", "Invalid" for the
 * Invalid Emails list). Other reasons ("Spam Content", "Invalid SMTPAPI header", …) are about the message.
 */
const DROPPED_SUPPRESSES: Record<string, NonNullable<ProviderEvent['suppresses']>> = {
  'bounced address': 'bounce',
  invalid: 'bounce',
  'unsubscribed address': 'unsubscribe',
  'spam reporting address': 'complaint',
};

/** One SendGrid event → our shape; null for events nurture doesn't record (processed, group_resubscribe, …). */
export function parseSendgridEvent(ev: unknown, opts: ParseOptions = {}): ProviderEvent | null {
  if (!isObj(ev)) return null;
  const name = str(ev.event);
  const kind = name ? KIND[name] : undefined;
  if (!kind) return null;
  const at = fromUnixSeconds(ev.timestamp);
  if (!at) return null;
  const email = lowerEmail(ev.email);
  const providerMessageId = str(ev.sg_message_id);
  // Custom args (unique_args) arrive as top-level keys of the event; smtp-id is the Message-ID header
  // of the submitted message (ours when sending through the SMTP relay) and only rides delivery events.
  const messageId = messageIdOf(ev[opts.messageIdArg ?? MESSAGE_ID_ARG]) ?? messageIdOf(ev['smtp-id']);
  const sgEventId = str(ev.sg_event_id);
  const event: ProviderEvent = {
    provider: 'sendgrid',
    sourceId: sgEventId ? `sendgrid:${sgEventId}` : hashId('sendgrid', name, providerMessageId, email, ev.timestamp, ev.url),
    kind,
    messageId,
    providerMessageId,
    // unique_args set through X-SMTPAPI arrive as top-level keys of every event of the message.
    messageRowId: rowIdOf(ev[MESSAGE_ROW_ARG]),
    email,
    at,
    raw: ev,
  };
  if (kind === 'bounce') {
    const reason = str(ev.reason);
    // "type": "bounce" (the address is suppressed) or "blocked" (this message was refused, the address wasn't).
    event.bounce = {
      permanent: str(ev.type) !== 'blocked',
      status: enhancedStatus(ev.status, reason),
      diagnostic: reason,
    };
  } else if (kind === 'deferred') {
    const response = str(ev.response) ?? str(ev.reason);
    event.bounce = { permanent: false, status: enhancedStatus(ev.status, response), diagnostic: response };
  } else if (kind === 'dropped') {
    const reason = str(ev.reason);
    event.bounce = { permanent: true, status: null, diagnostic: reason };
    const suppresses = reason ? DROPPED_SUPPRESSES[reason.trim().toLowerCase()] : undefined;
    if (suppresses) event.suppresses = suppresses;
  }
  // Apple Mail Privacy Protection's proxy fetches every image on delivery; SendGrid flags those opens.
  if (kind === 'open' && ev.sg_machine_open === true) event.machineOpen = true;
  if (kind === 'open' || kind === 'click') {
    event.userAgent = str(ev.useragent);
    event.ip = str(ev.ip);
  }
  if (kind === 'click') event.url = str(ev.url);
  return event;
}

/** The Event Webhook body (a JSON array; parse it yourself, after verifying the raw bytes). */
export function parseSendgridEvents(body: unknown, opts: ParseOptions = {}): ProviderEvent[] {
  const list = Array.isArray(body) ? body : [body];
  return list.map((e) => parseSendgridEvent(e, opts)).filter((e): e is ProviderEvent => e !== null);
}

/**
 * Inbound Parse form fields → an RFC 5322 message. With "POST the raw, full MIME message" on, SendGrid
 * sends it whole in `email`; otherwise the message is rebuilt from the raw `headers` block and the
 * decoded `text`/`html` parts (attachments are not carried over). The caller decodes each field with
 * the charset SendGrid lists for it in the `charsets` field.
 */
export function sendgridInboundToRaw(fields: Record<string, string | undefined>): string {
  const email = fields.email;
  if (email && email.trim()) return email;
  return assembleMessage({
    headers: splitHeaderBlock(fields.headers ?? ''),
    ensure: [
      ['From', fields.from ?? ''],
      ['To', fields.to ?? ''],
      ['Cc', fields.cc ?? ''],
      ['Subject', fields.subject ?? ''],
    ],
    text: fields.text ?? null,
    html: fields.html ?? null,
  });
}
