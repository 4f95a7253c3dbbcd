/**
 * Delivery status notifications (RFC 3464 multipart/report; report-type=delivery-status), plus the
 * non-standard "mailer-daemon" notices a few old MTAs still send. Pure over the parsed parts.
 */

export type BounceSource = {
  headers: Record<string, string>;
  subject: string;
  text: string;
  /** Body of the message/delivery-status (or message/global-delivery-status, RFC 6533) part. */
  deliveryStatus: string | null;
  /** Header section of the returned message (message/rfc822 or text/rfc822-headers part). */
  returnedHeaders: string | null;
};

export type Bounce = {
  /** A permanent or final failure (Action: failed). A delay notice is not a bounce. */
  isBounce: boolean;
  /** True for any delivery status notification, including delays. */
  isDsn: boolean;
  /** RFC 3464 Action: failed | delayed | delivered | relayed | expanded. */
  action: string | null;
  recipient: string | null;
  /** RFC 3463 enhanced status, e.g. 5.1.1. */
  status: string | null;
  diagnostic: string | null;
  originalMessageId: string | null;
};

type Fields = Map<string, string>;

/** RFC 3464 §2.1: blocks of header-like fields separated by blank lines; continuation lines are folded. */
export function parseStatusFields(body: string): Fields[] {
  const blocks: Fields[] = [];
  let current: Fields = new Map();
  let lastKey: string | null = null;
  for (const line of body.replace(/\r\n?/g, '\n').split('\n')) {
    if (!line.trim()) {
      if (current.size) blocks.push(current);
      current = new Map();
      lastKey = null;
    } else if (/^[ \t]/.test(line) && lastKey) {
      current.set(lastKey, `${current.get(lastKey) ?? ''} ${line.trim()}`);
    } else {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      lastKey = line.slice(0, colon).trim().toLowerCase();
      current.set(lastKey, line.slice(colon + 1).trim());
    }
  }
  if (current.size) blocks.push(current);
  return blocks;
}

/** "rfc822; ana@x.com" → "ana@x.com"; "smtp; 550 5.1.1 …" → "550 5.1.1 …". */
function withoutType(value: string | undefined): string | null {
  if (!value) return null;
  const semi = value.indexOf(';');
  const bare = (semi >= 0 ? value.slice(semi + 1) : value).trim();
  return bare.replace(/^<(.*)>$/, '$1') || null;
}

export function normaliseMessageId(value: string | null | undefined): string | null {
  if (!value) return null;
  const match = /<([^<>]+)>/.exec(value);
  const id = (match ? match[1] : value)?.trim();
  return id ? id : null;
}

function headerFrom(section: string | null, name: string): string | null {
  if (!section) return null;
  const fields = parseStatusFields(section.split(/\r?\n\r?\n/)[0] ?? '')[0];
  return fields?.get(name) ?? null;
}

const STATUS_CODE = /\b([245]\.\d{1,3}\.\d{1,3})\b/;
const DAEMON_SENDER = /mailer-daemon|postmaster|mail delivery (subsystem|system)/i;
const BOUNCE_SUBJECT =
  /undeliver|delivery status notification|delivery (has )?failed|failure notice|returned mail|mail delivery failed|non ?remis|unzustellbar|no se puede entregar|could not be delivered/i;

const NOT_A_BOUNCE: Bounce = {
  isBounce: false,
  isDsn: false,
  action: null,
  recipient: null,
  status: null,
  diagnostic: null,
  originalMessageId: null,
};

export function parseBounce(mail: BounceSource): Bounce {
  const contentType = mail.headers['content-type']?.toLowerCase() ?? '';
  const isReport = contentType.includes('multipart/report') && contentType.includes('delivery-status');
  const originalMessageId =
    normaliseMessageId(headerFrom(mail.returnedHeaders, 'message-id')) ??
    normaliseMessageId(mail.headers['in-reply-to']) ??
    normaliseMessageId(mail.headers['x-original-message-id']);

  if (mail.deliveryStatus || isReport) {
    const blocks = parseStatusFields(mail.deliveryStatus ?? '').slice(1);
    // Prefer the recipient that failed; a DSN can also list recipients that were delivered or delayed.
    const block =
      blocks.find((b) => b.get('action')?.toLowerCase() === 'failed') ??
      blocks.find((b) => b.has('action') || b.has('status')) ??
      new Map<string, string>();
    const status = STATUS_CODE.exec(block.get('status') ?? '')?.[1] ?? STATUS_CODE.exec(mail.text)?.[1] ?? null;
    const action = block.get('action')?.toLowerCase() ?? (status ? actionFromStatus(status) : null);
    return {
      isBounce: action === 'failed',
      isDsn: true,
      action,
      recipient:
        withoutType(block.get('final-recipient')) ?? withoutType(block.get('original-recipient')) ?? failedRecipient(mail),
      status,
      diagnostic: withoutType(block.get('diagnostic-code')),
      originalMessageId,
    };
  }

  // Pre-RFC 3464 notices: recognised by sender and subject together, never by one alone.
  const from = mail.headers['from'] ?? '';
  if (DAEMON_SENDER.test(from) && BOUNCE_SUBJECT.test(mail.subject)) {
    const status = STATUS_CODE.exec(mail.text)?.[1] ?? null;
    const action = status ? actionFromStatus(status) : 'failed';
    return { ...NOT_A_BOUNCE, isBounce: action === 'failed', isDsn: true, action, recipient: failedRecipient(mail), status, originalMessageId };
  }
  return NOT_A_BOUNCE;
}

/** RFC 3463: class 5 is permanent, class 4 persistent-transient (the MTA keeps trying), class 2 success. */
function actionFromStatus(status: string): string {
  if (status.startsWith('5')) return 'failed';
  if (status.startsWith('4')) return 'delayed';
  return 'delivered';
}

/** Exim and Gmail name the failed address in X-Failed-Recipients. */
function failedRecipient(mail: BounceSource): string | null {
  return mail.headers['x-failed-recipients']?.split(',')[0]?.trim() || null;
}
