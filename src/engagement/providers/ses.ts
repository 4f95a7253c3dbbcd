/**
 * Amazon SES event publishing / feedback notifications, delivered over Amazon SNS to an HTTPS endpoint.
 *
 * SNS signs each message (Notification, SubscriptionConfirmation, UnsubscribeConfirmation) with RSA:
 * SignatureVersion 1 = SHA1withRSA, 2 = SHA256withRSA, over a canonical "Name\nvalue\n" string of fixed
 * fields in byte order of their names (see snsStringToSign). The certificate is at SigningCertURL, which
 * the caller must check with isTrustedSigningCertUrl before fetching (and should cache); verification
 * itself is pure. Also check TopicArn against the topics you subscribed to.
 */
import { createHash, verify, type KeyLike } from 'node:crypto';
import {
  MESSAGE_ROW_ARG,
  enhancedStatus,
  fromIso,
  isObj,
  lowerEmail,
  messageIdOf,
  obj,
  rowIdOf,
  str,
  type Obj,
  type ProviderEvent,
  type ProviderEventKind,
} from './common.js';

export type SnsMessageType = 'Notification' | 'SubscriptionConfirmation' | 'UnsubscribeConfirmation';

export type SnsEnvelope = {
  Type: string;
  MessageId: string;
  TopicArn: string;
  Message: string;
  Timestamp: string;
  Subject?: string | null;
  Token?: string;
  SubscribeURL?: string;
  UnsubscribeURL?: string;
  SignatureVersion: string;
  Signature: string;
  SigningCertURL: string;
};

/** Lambda's SNS records spell some keys differently (SigningCertUrl, SubscribeUrl, UnsubscribeUrl). */
function field(env: Obj, name: string): unknown {
  if (name in env) return env[name];
  const alias = name.replace(/URL$/, 'Url');
  return alias !== name ? env[alias] : undefined;
}

const NOTIFICATION_FIELDS = ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'] as const;
const CONFIRMATION_FIELDS = ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'] as const;

/**
 * The exact string SNS signs. Notification: Message, MessageId, Subject (only if present), Timestamp,
 * TopicArn, Type. SubscriptionConfirmation and UnsubscribeConfirmation: Message, MessageId,
 * SubscribeURL, Timestamp, Token, TopicArn, Type. Each as "Name\n" + value + "\n", values as they
 * were after JSON decoding (escaped control characters back to themselves).
 * Throws for an unknown Type or a missing required field.
 */
export function snsStringToSign(envelope: unknown): string {
  const env = obj(envelope);
  const type = str(env.Type);
  const fields =
    type === 'Notification' ? NOTIFICATION_FIELDS : type === 'SubscriptionConfirmation' || type === 'UnsubscribeConfirmation' ? CONFIRMATION_FIELDS : null;
  if (!fields) throw new Error(`unknown SNS message type: ${String(env.Type)}`);
  let out = '';
  for (const name of fields) {
    const value = field(env, name);
    if (name === 'Subject' && (value === undefined || value === null)) continue;
    if (typeof value !== 'string') throw new Error(`SNS ${type} without ${name}`);
    out += `${name}\n${value}\n`;
  }
  return out;
}

/**
 * Checks the envelope's Signature against the signing certificate (PEM, as fetched from the trusted
 * SigningCertURL). Node's crypto.verify takes an X.509 certificate PEM or a public key PEM/KeyObject
 * alike, so tests can pass a public key. This does not validate the certificate's chain: the trust
 * comes from fetching it over HTTPS from an SNS host (isTrustedSigningCertUrl).
 */
export function verifySnsSignature(envelope: unknown, certificatePem: KeyLike): boolean {
  const env = obj(envelope);
  const version = str(env.SignatureVersion);
  const algorithm = version === '1' ? 'sha1' : version === '2' ? 'sha256' : null;
  const signature = str(env.Signature);
  if (!algorithm || !signature) return false;
  try {
    return verify(algorithm, Buffer.from(snsStringToSign(env), 'utf8'), certificatePem, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

const SNS_HOST = /^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/;

function snsUrl(value: unknown): URL | null {
  const s = str(value);
  if (!s) return null;
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' || url.username || url.password || (url.port && url.port !== '443')) return null;
  return SNS_HOST.test(url.hostname) ? url : null;
}

/** https, host sns.<region>.amazonaws.com (or .com.cn), path ending .pem: the only certificates to fetch. */
export function isTrustedSigningCertUrl(url: unknown): boolean {
  const u = snsUrl(url);
  return !!u && u.pathname.endsWith('.pem') && !u.search && !u.hash;
}

/** The SubscribeURL of a SubscriptionConfirmation is safe to GET only on an SNS host too. */
export function isTrustedSubscribeUrl(url: unknown): boolean {
  return snsUrl(url) !== null;
}

// ---- SES payloads ------------------------------------------------------------------------------

function sesId(...parts: unknown[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(JSON.stringify(p ?? null)).update('\u0000');
  return `ses:h:${h.digest('hex').slice(0, 40)}`;
}

/**
 * Our Message-ID: SES replaces the Message-ID on the wire with its own, but `mail.headers` (and
 * commonHeaders) carry the headers as submitted, so the original is there when headers are included.
 */
function originalMessageId(mail: Obj, sesMessageId: string | null): string | null {
  const headers = Array.isArray(mail.headers) ? mail.headers : [];
  for (const h of headers) {
    const o = obj(h);
    if (str(o.name)?.toLowerCase() === 'message-id') return messageIdOf(o.value);
  }
  const common = messageIdOf(obj(mail.commonHeaders).messageId);
  // commonHeaders.messageId is SES's own id when the submitted message had none.
  return common && common !== sesMessageId && !common.startsWith(`${sesMessageId}@`) ? common : null;
}

type Recipient = { email: string | null; status?: unknown; diagnostic?: unknown };

/**
 * One SES event-publishing record (eventType) or feedback notification (notificationType), already
 * JSON-decoded from the SNS Message, → one event per recipient it names. Send and Rendering Failure
 * records map to nothing.
 */
export function parseSesNotification(message: unknown): ProviderEvent[] {
  if (!isObj(message)) return [];
  const type = str(message.eventType) ?? str(message.notificationType);
  const mail = obj(message.mail);
  const providerMessageId = str(mail.messageId);
  const messageId = originalMessageId(mail, providerMessageId);
  // X-SES-MESSAGE-TAGS on the way out: event publishing gives each tag as a list under mail.tags.
  const messageRowId = rowIdOf(obj(mail.tags)[MESSAGE_ROW_ARG]);
  const destination = (Array.isArray(mail.destination) ? mail.destination : []).map(lowerEmail);
  const onlyRecipient = destination.length === 1 ? destination[0]! : null;

  const make = (
    kind: ProviderEventKind,
    at: Date | null,
    recipients: Recipient[],
    idOf: (r: Recipient) => string,
    extra: (r: Recipient) => Partial<ProviderEvent> = () => ({}),
  ): ProviderEvent[] =>
    at
      ? recipients.map((r) => ({
          provider: 'ses' as const,
          sourceId: idOf(r),
          kind,
          messageId,
          providerMessageId,
          messageRowId,
          email: r.email,
          at,
          raw: message,
          ...extra(r),
        }))
      : [];

  const list = (value: unknown, key: string, status = 'status', diagnostic = 'diagnosticCode'): Recipient[] =>
    (Array.isArray(value) ? value : []).map((v) => {
      const o = obj(v);
      return { email: lowerEmail(o[key]), status: o[status], diagnostic: o[diagnostic] };
    });
  const failure = (permanent: boolean) => (r: Recipient) => ({
    bounce: { permanent, status: enhancedStatus(r.status, r.diagnostic), diagnostic: str(r.diagnostic) },
  });

  switch (type) {
    case 'Bounce': {
      const b = obj(message.bounce);
      const feedbackId = str(b.feedbackId);
      return make(
        'bounce',
        fromIso(b.timestamp),
        list(b.bouncedRecipients, 'emailAddress'),
        (r) => (feedbackId ? `ses:${feedbackId}:${r.email}` : sesId(type, providerMessageId, r.email, b.timestamp)),
        failure(str(b.bounceType) === 'Permanent'),
      );
    }
    case 'Complaint': {
      const c = obj(message.complaint);
      const feedbackId = str(c.feedbackId);
      return make(
        'complaint',
        fromIso(c.timestamp),
        list(c.complainedRecipients, 'emailAddress'),
        (r) => (feedbackId ? `ses:${feedbackId}:${r.email}` : sesId(type, providerMessageId, r.email, c.timestamp)),
      );
    }
    case 'Delivery': {
      const d = obj(message.delivery);
      const recipients = (Array.isArray(d.recipients) ? d.recipients : []).map((e) => ({ email: lowerEmail(e) }));
      return make('delivered', fromIso(d.timestamp), recipients, (r) => sesId(type, providerMessageId, r.email, d.timestamp));
    }
    case 'DeliveryDelay': {
      const d = obj(message.deliveryDelay);
      return make(
        'deferred',
        fromIso(d.timestamp),
        list(d.delayedRecipients, 'emailAddress'),
        (r) => sesId(type, providerMessageId, r.email, d.timestamp),
        failure(false),
      );
    }
    case 'Reject': {
      const reason = str(obj(message.reject).reason);
      return make(
        'dropped',
        fromIso(mail.timestamp),
        destination.map((email) => ({ email, diagnostic: reason })),
        (r) => sesId(type, providerMessageId, r.email),
        failure(true),
      );
    }
    case 'Open':
    case 'Click': {
      const o = obj(type === 'Open' ? message.open : message.click);
      const url = type === 'Click' ? str(o.link) : null;
      return make(
        type === 'Open' ? 'open' : 'click',
        fromIso(o.timestamp),
        [{ email: onlyRecipient }],
        () => sesId(type, providerMessageId, o.timestamp, o.ipAddress, url),
        () => ({ userAgent: str(o.userAgent), ip: str(o.ipAddress), ...(type === 'Click' ? { url } : {}) }),
      );
    }
    case 'Subscription': {
      const s = obj(message.subscription);
      if (obj(s.newTopicPreferences).unsubscribeAll !== true) return [];
      return make('unsubscribe', fromIso(s.timestamp), [{ email: onlyRecipient }], () => sesId(type, providerMessageId, s.timestamp));
    }
    default:
      return [];
  }
}

/**
 * An SNS HTTP(S) POST body (verify it first) → SES events. Confirmation messages and non-JSON
 * Messages give []: the caller handles SubscriptionConfirmation itself.
 */
export function parseSesSnsEnvelope(envelope: unknown): ProviderEvent[] {
  const env = obj(envelope);
  if (str(env.Type) !== 'Notification') return [];
  const message = str(env.Message);
  if (!message) return [];
  try {
    return parseSesNotification(JSON.parse(message));
  } catch {
    return [];
  }
}

/**
 * An SES receiving notification from a receipt rule's SNS action ("notificationType": "Received",
 * the JSON-decoded SNS Message) → the raw RFC 5322 message in its `content`; base64-decoded when the
 * action's encoding says BASE64. Null for other notifications (S3/Lambda actions carry no content).
 */
export function sesInboundToRaw(message: unknown): string | null {
  const m = obj(message);
  if (str(m.notificationType) !== 'Received') return null;
  const content = str(m.content);
  if (!content) return null;
  const encoding = str(obj(obj(m.receipt).action).encoding);
  return encoding && /^base64$/i.test(encoding) ? Buffer.from(content, 'base64').toString('utf8') : content;
}
