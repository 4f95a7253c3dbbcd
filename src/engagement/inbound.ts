/**
 * Raw inbound RFC 5322 message → what nurture needs to know about it. Parsing only (mailparser), no I/O.
 */
import { convert } from 'html-to-text';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import { detectAutoReply, type AutoReply } from './autoreply.js';
import { normaliseMessageId, parseBounce, SUCCESS_ACTIONS, type Bounce } from './bounces.js';
import { parseComplaint, type Complaint } from './complaints.js';
import { extractNewText } from './quotes.js';

export type InboundMail = {
  /** Without angle brackets. */
  messageId: string | null;
  inReplyTo: string | null;
  references: string[];
  from: { address: string; name: string } | null;
  to: string[];
  subject: string;
  /** The Date header, or null when it is missing or unreadable. */
  date: Date | null;
  /** The sender's UTC offset in minutes, from the Date header (null without one). */
  utcOffsetMinutes: number | null;
  text: string;
  /** The person's own words: quoted history, signature and mobile footers removed. */
  newText: string;
  /** DSNs also carry Auto-Submitted (RFC 3464 §2), so this is true for them too; see inboundKind. */
  autoReply: AutoReply;
  /** Lower-cased header names; raw (unfolded, not RFC 2047-decoded) values; first occurrence wins. */
  headers: Record<string, string>;
  /** Parts of a delivery status notification, when the message is one (see parseBounce). */
  deliveryStatus: string | null;
  returnedHeaders: string | null;
  /** Body of a message/feedback-report part (RFC 5965 complaint), when the message is one. */
  feedbackReport: string | null;
};

/**
 * `notice`: a machine's notice that changes nothing: a success DSN (Action: delivered / relayed / expanded),
 * a read receipt (RFC 8098), a feedback report that is not a complaint (not-spam, auth-failure).
 */
export type InboundKind = 'reply' | 'auto_reply' | 'bounce' | 'delayed' | 'complaint' | 'notice';

export type ParseOptions = {
  /** When the mail arrived: the reference for an out-of-office's partial dates if it has no Date header. */
  receivedAt?: Date | null;
};

function headerMap(parsed: ParsedMail): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const { key, line } of parsed.headerLines) {
    if (key in headers) continue;
    const colon = line.indexOf(':');
    headers[key.toLowerCase()] = line.slice(colon + 1).replace(/\r?\n[ \t]+/g, ' ').trim();
  }
  return headers;
}

/**
 * The Message-ID the mail's sender wrote, if any. Gmail gives mail that arrives without one (or with one
 * it can't read) an id of its own, tagged SMTPIN_ADDED_MISSING or SMTPIN_ADDED_BROKEN, and keeps a broken
 * original in X-Google-Original-Message-ID. The same mail read on another path (posted to /v1/inbound by
 * the provider that took it first) has no such id, so Gmail's would name it twice.
 */
function sendersMessageId(parsed: ParsedMail, headers: Record<string, string>): string | null {
  const id = normaliseMessageId(parsed.messageId);
  if (!id || !/SMTPIN_ADDED_/i.test(id)) return id;
  return normaliseMessageId(headers['x-google-original-message-id']);
}

function ids(value: string | string[] | undefined): string[] {
  const list = Array.isArray(value) ? value : value ? [value] : [];
  return list.flatMap((v) => v.match(/<[^<>]+>/g) ?? [v]).map(normaliseMessageId).filter((v): v is string => !!v);
}

function addresses(field: AddressObject | AddressObject[] | undefined): string[] {
  const objects = Array.isArray(field) ? field : field ? [field] : [];
  return objects.flatMap((o) => o.value).flatMap((a) => (a.address ? [a.address.toLowerCase()] : []));
}

/** HTML-only replies: wordwrap off so attribution lines stay whole; blockquotes become "> " lines. */
export function htmlToPlain(html: string): string {
  return convert(html, {
    wordwrap: false,
    selectors: [
      { selector: 'a', options: { ignoreHref: true } },
      { selector: 'img', format: 'skip' },
      { selector: 'style', format: 'skip' },
      { selector: 'head', format: 'skip' },
    ],
  });
}

function partText(content: Buffer | string): string {
  return typeof content === 'string' ? content : content.toString('utf8');
}

const REPORT_PART_TYPES = ['message/delivery-status', 'message/global-delivery-status', 'message/feedback-report', 'message/rfc822', 'text/rfc822-headers', 'message/global-headers'] as const;

/**
 * Report parts straight from the raw MIME: mailparser renders a message/rfc822 part marked inline into the
 * body text (losing its Message-ID), as many feedback loops and some MTAs mark it. Only the part's first
 * block is read (its header section, or the report's fields), which is all that is needed.
 */
function rawParts(raw: string): Map<string, string> {
  const found = new Map<string, string>();
  const re = /^Content-Type:[ \t]*([a-z0-9.+-]+\/[a-z0-9.+-]+)[^\n]*(?:\r?\n[ \t][^\n]*)*\r?\n((?:[^\r\n]+\r?\n)*?)\r?\n/gim;
  for (const m of raw.matchAll(re)) {
    const type = m[1]!.toLowerCase();
    if (!(REPORT_PART_TYPES as readonly string[]).includes(type) || found.has(type)) continue;
    // Skip the part's own headers (Content-Disposition, Content-Description…), then read its content.
    const start = (m.index ?? 0) + m[0].length;
    const rest = raw.slice(start);
    const content = type === 'message/delivery-status' || type === 'message/global-delivery-status' ? rest.split(/\r?\n--/)[0]! : rest.split(/\r?\n\r?\n/)[0]!;
    found.set(type, content);
  }
  return found;
}

function dsnParts(parsed: ParsedMail, raw: string): Pick<InboundMail, 'deliveryStatus' | 'returnedHeaders' | 'feedbackReport'> {
  let deliveryStatus: string | null = null;
  let returnedHeaders: string | null = null;
  let feedbackReport: string | null = null;
  for (const attachment of parsed.attachments) {
    const type = attachment.contentType.toLowerCase();
    if (type === 'message/delivery-status' || type === 'message/global-delivery-status') {
      deliveryStatus ??= partText(attachment.content);
    } else if (type === 'message/feedback-report') {
      feedbackReport ??= partText(attachment.content);
    } else if (type === 'message/rfc822' || type === 'text/rfc822-headers' || type === 'message/global-headers') {
      // Only the header section matters: it carries the Message-ID we sent.
      returnedHeaders ??= partText(attachment.content).split(/\r?\n\r?\n/)[0] ?? null;
    }
  }
  const contentType = (parsed.headers.get('content-type') as { value?: string } | undefined)?.value?.toLowerCase() ?? '';
  if ((!returnedHeaders || (!deliveryStatus && !feedbackReport)) && (contentType.startsWith('multipart/') || /message\/rfc822/i.test(raw))) {
    const parts = rawParts(raw);
    deliveryStatus ??= parts.get('message/delivery-status') ?? parts.get('message/global-delivery-status') ?? null;
    feedbackReport ??= parts.get('message/feedback-report') ?? null;
    returnedHeaders ??= parts.get('message/rfc822') ?? parts.get('text/rfc822-headers') ?? parts.get('message/global-headers') ?? null;
  }
  return { deliveryStatus, returnedHeaders, feedbackReport };
}

/** "Mon, 5 Jan 2026 22:15:00 -0800" → -480; null without a numeric zone. */
function utcOffsetOf(dateHeader: string | undefined): number | null {
  const m = /([+-])(\d{2})(\d{2})\s*(?:\([^)]*\))?\s*$/.exec(dateHeader ?? '');
  if (!m) return null;
  const minutes = Number(m[2]) * 60 + Number(m[3]);
  return m[1] === '-' ? -minutes : minutes;
}

/**
 * A mail may carry NUL characters (a quoted-printable `=00`, a stray byte in an 8-bit part); Postgres
 * stores none in text or jsonb, and one would fail the whole record, every time it is retried. They mean
 * nothing to a reader, so they are dropped where the mail is read.
 */
const withoutNul = (s: string) => (s.includes('\u0000') ? s.replace(/\u0000/g, '') : s);

export async function parseInboundMail(raw: string | Buffer, options: ParseOptions = {}): Promise<InboundMail> {
  // keepDeliveryStatus: keep DSN parts as attachments so they can be read field by field.
  const parsed = await simpleParser(raw, { keepDeliveryStatus: true, skipHtmlToText: true, skipTextToHtml: true });
  const headers = Object.fromEntries(Object.entries(headerMap(parsed)).map(([k, v]) => [k, withoutNul(v)]));
  const html = typeof parsed.html === 'string' ? parsed.html : '';
  const text = withoutNul(parsed.text?.trim() ? parsed.text : html ? htmlToPlain(html) : '');
  const newText = extractNewText(text);
  const sender = parsed.from?.value[0];
  const subject = withoutNul(parsed.subject ?? '');
  const date = headers['date'] && parsed.date && !Number.isNaN(parsed.date.getTime()) ? parsed.date : null;
  const utcOffsetMinutes = date ? utcOffsetOf(headers['date']) : null;
  // Without a Date header, the out-of-office was written about when it arrived.
  const reference = date ?? options.receivedAt ?? null;
  const rawText = typeof raw === 'string' ? raw : raw.toString('latin1');
  return {
    messageId: sendersMessageId(parsed, headers),
    inReplyTo: ids(parsed.inReplyTo)[0] ?? null,
    references: ids(parsed.references),
    from: sender?.address ? { address: withoutNul(sender.address.toLowerCase()), name: withoutNul(sender.name ?? '') } : null,
    to: addresses(parsed.to),
    subject,
    date,
    utcOffsetMinutes,
    text,
    newText,
    autoReply: detectAutoReply({ headers, subject, text: newText, date: reference, utcOffsetMinutes }),
    headers,
    ...dsnWithoutNul(dsnParts(parsed, rawText)),
  };
}

function dsnWithoutNul(d: ReturnType<typeof dsnParts>): ReturnType<typeof dsnParts> {
  const clean = (v: string | null) => (v === null ? null : withoutNul(v));
  return { deliveryStatus: clean(d.deliveryStatus), returnedHeaders: clean(d.returnedHeaders), feedbackReport: clean(d.feedbackReport) };
}

/** The delivery status notification in `mail`, if any (isDsn false otherwise). */
export function bounceOf(mail: InboundMail): Bounce {
  return parseBounce(mail);
}

/** The feedback-loop report in `mail`, if any (isReport false otherwise). */
export function complaintOf(mail: InboundMail): Complaint {
  return parseComplaint(mail);
}

/** RFC 8098 read receipts: the person's client answered by itself, nothing the person wrote. */
function isReadReceipt(mail: InboundMail): boolean {
  const type = mail.headers['content-type']?.toLowerCase() ?? '';
  return type.includes('multipart/report') && type.includes('disposition-notification');
}

/**
 * A DMARC aggregate report (RFC 7489 §7.2.1.1 prescribes its subject) or an SMTP TLS report (RFC 8460:
 * multipart/report; report-type=tlsrpt), should the domain's rua/tlsrpt address be the inbound one:
 * about the domain's mail in general, never a reply to ours.
 */
function isAggregateReport(mail: InboundMail): boolean {
  const type = mail.headers['content-type']?.toLowerCase() ?? '';
  if (type.includes('multipart/report') && /report-type="?tlsrpt/.test(type)) return true;
  if ('tls-report-domain' in mail.headers) return true;
  return /^\s*report domain:\s*\S+\s+submitter:\s*\S+/i.test(mail.subject);
}

/**
 * Reports about the message win over the auto-reply headers they also carry (Postfix sets
 * Auto-Submitted on its DSNs, feedback loops on their reports).
 */
export function inboundKind(mail: InboundMail): InboundKind {
  const complaint = parseComplaint(mail);
  if (complaint.isReport) return complaint.isComplaint ? 'complaint' : 'notice';
  const bounce = parseBounce(mail);
  if (bounce.isBounce) return 'bounce';
  if (bounce.isDsn) return bounce.action && SUCCESS_ACTIONS.has(bounce.action) ? 'notice' : 'delayed';
  if (isReadReceipt(mail) || isAggregateReport(mail)) return 'notice';
  if (mail.autoReply.isAuto) return 'auto_reply';
  return 'reply';
}
