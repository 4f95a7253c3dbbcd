/**
 * Postmark: webhooks (one JSON object per POST, told apart by RecordType) and the inbound JSON webhook.
 *
 * Postmark does not sign webhooks. Protect the URL with HTTP Basic auth credentials embedded in the
 * webhook URL (https://user:pass@host/…), checked with verifyBasicAuth, and/or allow-list Postmark's
 * published webhook IPs at the edge.
 */
import {
  MESSAGE_ID_ARG,
  MESSAGE_ROW_ARG,
  OK,
  assembleMessage,
  enhancedStatus,
  fail,
  fromIso,
  hashId,
  isObj,
  lowerEmail,
  messageIdOf,
  obj,
  rowIdOf,
  safeEqual,
  str,
  type HeaderPair,
  type Obj,
  type ParseOptions,
  type ProviderEvent,
  type Verification,
} from './common.js';

/** Checks an `Authorization: Basic …` header against the expected credentials in constant time. */
export function verifyBasicAuth(header: string | null | undefined, user: string, pass: string): Verification {
  if (!header) return fail('missing authorization header');
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header.trim());
  if (!m) return fail('not basic auth');
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return fail('malformed credentials');
  // Compare both halves before deciding, so a wrong user name costs as long as a wrong password.
  const userOk = safeEqual(decoded.slice(0, colon), user);
  const passOk = safeEqual(decoded.slice(colon + 1), pass);
  return userOk && passOk ? OK : fail('bad credentials');
}

/** Bounce webhook Types that aren't delivery failures of our message: not recorded. */
const NOT_A_FAILURE = new Set(['AutoResponder', 'Subscribe', 'AddressChange', 'OpenRelayTest', 'ChallengeVerification', 'InboundError']);
/** Types that mean the address itself is bad (Postmark also deactivates it: Inactive true). */
const PERMANENT = new Set(['HardBounce', 'BadEmailAddress', 'ManuallyDeactivated', 'Unconfirmed']);

function ours(json: Obj, opts: ParseOptions): string | null {
  return messageIdOf(obj(json.Metadata)[opts.messageIdArg ?? MESSAGE_ID_ARG]);
}

function base(json: Obj, opts: ParseOptions, email: unknown) {
  return {
    provider: 'postmark' as const,
    messageId: ours(json, opts),
    providerMessageId: str(json.MessageID) ?? str(json.MessageId),
    // X-PM-Metadata-<key> headers on the way out come back in every webhook's Metadata.
    messageRowId: rowIdOf(obj(json.Metadata)[MESSAGE_ROW_ARG]),
    email: lowerEmail(email),
    raw: json as unknown,
  };
}

/** The Status: line of the DSN in a bounce's Content dump, if Postmark included it. */
function dumpStatus(content: unknown): string | null {
  const m = /^Status:\s*([245]\.\d{1,3}\.\d{1,3})\b/im.exec(str(content) ?? '');
  return m?.[1] ?? null;
}

/** One Postmark webhook body → our shape; null for records nurture doesn't record. */
export function parsePostmarkEvent(body: unknown, opts: ParseOptions = {}): ProviderEvent | null {
  if (!isObj(body)) return null;
  const type = str(body.RecordType);
  switch (type) {
    case 'Delivery': {
      const at = fromIso(body.DeliveredAt);
      if (!at) return null;
      const b = base(body, opts, body.Recipient);
      return { ...b, kind: 'delivered', at, sourceId: hashId('postmark', type, b.providerMessageId, b.email, body.DeliveredAt) };
    }
    case 'Bounce': {
      const at = fromIso(body.BouncedAt);
      const bounceType = str(body.Type) ?? 'Unknown';
      if (!at || NOT_A_FAILURE.has(bounceType)) return null;
      const b = base(body, opts, body.Email);
      const sourceId = str(body.ID) ? `postmark:bounce:${str(body.ID)}` : hashId('postmark', type, b.providerMessageId, b.email, body.BouncedAt);
      if (bounceType === 'SpamComplaint') return { ...b, kind: 'complaint', at, sourceId };
      if (bounceType === 'Unsubscribe') return { ...b, kind: 'unsubscribe', at, sourceId };
      const details = str(body.Details);
      return {
        ...b,
        kind: 'bounce',
        at,
        sourceId,
        bounce: {
          permanent: PERMANENT.has(bounceType) || body.Inactive === true,
          status: enhancedStatus(details) ?? dumpStatus(body.Content),
          diagnostic: details ?? str(body.Description),
        },
      };
    }
    case 'SpamComplaint': {
      const at = fromIso(body.BouncedAt);
      if (!at) return null;
      const b = base(body, opts, body.Email);
      const sourceId = str(body.ID) ? `postmark:spam:${str(body.ID)}` : hashId('postmark', type, b.providerMessageId, b.email, body.BouncedAt);
      return { ...b, kind: 'complaint', at, sourceId };
    }
    case 'Open':
    case 'Click': {
      const at = fromIso(body.ReceivedAt);
      if (!at) return null;
      const b = base(body, opts, body.Recipient);
      const url = type === 'Click' ? str(body.OriginalLink) : null;
      return {
        ...b,
        kind: type === 'Open' ? 'open' : 'click',
        at,
        sourceId: hashId('postmark', type, b.providerMessageId, b.email, body.ReceivedAt, url),
        userAgent: str(body.UserAgent),
        ip: str(obj(body.Geo).IP),
        ...(type === 'Click' ? { url } : {}),
      };
    }
    case 'SubscriptionChange': {
      // Only a recipient's own suppression is an unsubscribe; HardBounce/SpamComplaint suppressions
      // arrive as their own Bounce/SpamComplaint records, and SuppressSending false is a resubscribe.
      if (body.SuppressSending !== true || str(body.SuppressionReason) !== 'ManualSuppression') return null;
      const at = fromIso(body.ChangedAt);
      if (!at) return null;
      const b = base(body, opts, body.Recipient);
      return { ...b, kind: 'unsubscribe', at, sourceId: hashId('postmark', type, b.providerMessageId, b.email, body.ChangedAt) };
    }
    default:
      return null;
  }
}

type Recipient = { Email?: unknown; Name?: unknown };

function address(r: Recipient): string | null {
  const email = str(r.Email);
  if (!email) return null;
  const name = str(r.Name);
  return name ? `"${name.replace(/["\\]/g, '\\$&')}" <${email}>` : email;
}

function addressList(full: unknown, flat: unknown): string {
  if (Array.isArray(full) && full.length) {
    return full
      .map((r) => address(obj(r)))
      .filter((a): a is string => !!a)
      .join(', ');
  }
  return str(flat) ?? '';
}

/**
 * Inbound webhook JSON → an RFC 5322 message. Uses RawEmail when the stream is set to include it;
 * otherwise rebuilds from Headers[{Name,Value}] plus the top-level From/To/Cc/Subject/Date/ReplyTo
 * and TextBody/HtmlBody (attachments are not carried over). Postmark's MessageID is its own id, not
 * the sender's Message-ID, which (when present) is among Headers.
 */
export function postmarkInboundToRaw(json: unknown): string {
  const j = obj(json);
  const raw = str(j.RawEmail);
  if (raw) return raw;
  const headers: HeaderPair[] = (Array.isArray(j.Headers) ? j.Headers : [])
    .map((h) => obj(h))
    .flatMap((h) => {
      const name = str(h.Name);
      return name ? [[name, str(h.Value) ?? ''] as HeaderPair] : [];
    });
  const from = isObj(j.FromFull) ? address(j.FromFull) : null;
  return assembleMessage({
    headers,
    ensure: [
      ['From', from ?? str(j.From) ?? ''],
      ['To', addressList(j.ToFull, j.To)],
      ['Cc', addressList(j.CcFull, j.Cc)],
      ['Reply-To', str(j.ReplyTo) ?? ''],
      ['Subject', str(j.Subject) ?? ''],
      ['Date', str(j.Date) ?? ''],
    ],
    text: str(j.TextBody),
    html: str(j.HtmlBody),
  });
}
