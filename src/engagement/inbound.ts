/**
 * Raw inbound RFC 5322 message → what nurture needs to know about it. Parsing only (mailparser), no I/O.
 */
import { convert } from 'html-to-text';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import { detectAutoReply, type AutoReply } from './autoreply.js';
import { normaliseMessageId, parseBounce, type Bounce } from './bounces.js';
import { extractNewText } from './quotes.js';

export type InboundMail = {
  /** Without angle brackets. */
  messageId: string | null;
  inReplyTo: string | null;
  references: string[];
  from: { address: string; name: string } | null;
  to: string[];
  subject: string;
  date: Date | null;
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
};

export type InboundKind = 'reply' | 'auto_reply' | 'bounce' | 'delayed';

function headerMap(parsed: ParsedMail): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const { key, line } of parsed.headerLines) {
    if (key in headers) continue;
    const colon = line.indexOf(':');
    headers[key.toLowerCase()] = line.slice(colon + 1).replace(/\r?\n[ \t]+/g, ' ').trim();
  }
  return headers;
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

function dsnParts(parsed: ParsedMail): Pick<InboundMail, 'deliveryStatus' | 'returnedHeaders'> {
  let deliveryStatus: string | null = null;
  let returnedHeaders: string | null = null;
  for (const attachment of parsed.attachments) {
    const type = attachment.contentType.toLowerCase();
    if (type === 'message/delivery-status' || type === 'message/global-delivery-status') {
      deliveryStatus ??= partText(attachment.content);
    } else if (type === 'message/rfc822' || type === 'text/rfc822-headers' || type === 'message/global-headers') {
      // Only the header section matters: it carries the Message-ID we sent.
      returnedHeaders ??= partText(attachment.content).split(/\r?\n\r?\n/)[0] ?? null;
    }
  }
  return { deliveryStatus, returnedHeaders };
}

export async function parseInboundMail(raw: string | Buffer): Promise<InboundMail> {
  // keepDeliveryStatus: keep DSN parts as attachments so they can be read field by field.
  const parsed = await simpleParser(raw, { keepDeliveryStatus: true, skipHtmlToText: true, skipTextToHtml: true });
  const headers = headerMap(parsed);
  const html = typeof parsed.html === 'string' ? parsed.html : '';
  const text = parsed.text?.trim() ? parsed.text : html ? htmlToPlain(html) : '';
  const newText = extractNewText(text);
  const sender = parsed.from?.value[0];
  const subject = parsed.subject ?? '';
  const date = parsed.date && !Number.isNaN(parsed.date.getTime()) ? parsed.date : null;
  return {
    messageId: normaliseMessageId(parsed.messageId),
    inReplyTo: ids(parsed.inReplyTo)[0] ?? null,
    references: ids(parsed.references),
    from: sender?.address ? { address: sender.address.toLowerCase(), name: sender.name ?? '' } : null,
    to: addresses(parsed.to),
    subject,
    date,
    text,
    newText,
    autoReply: detectAutoReply({ headers, subject, text: newText, date }),
    headers,
    ...dsnParts(parsed),
  };
}

/** The delivery status notification in `mail`, if any (isDsn false otherwise). */
export function bounceOf(mail: InboundMail): Bounce {
  return parseBounce(mail);
}

/** A notification about delivery wins over the auto-reply headers it also carries (Postfix sets Auto-Submitted). */
export function inboundKind(mail: InboundMail): InboundKind {
  const bounce = parseBounce(mail);
  if (bounce.isBounce) return 'bounce';
  if (bounce.isDsn) return 'delayed';
  if (mail.autoReply.isAuto) return 'auto_reply';
  return 'reply';
}
