// Builds the email as it goes on the wire: addresses, threading and RFC 8058 unsubscribe headers.
import type Mail from 'nodemailer/lib/mailer/index.js';

export interface Address {
  name?: string | null;
  email: string;
}

export interface OutgoingMessage {
  /** Without angle brackets. */
  messageId: string;
  from: Address;
  to: Address;
  replyTo?: string | null;
  /**
   * SMTP MAIL FROM (the Return-Path the receiver records): the per-message VERP address, so a bounce names
   * its message without a Reply-To hiding the rep. Absent, nodemailer uses the From address.
   */
  envelopeFrom?: string | null;
  subject: string;
  html: string;
  text: string;
  inReplyTo?: string | null;
  references?: string[];
  unsubscribeUrl: string;
  /** This message's DKIM key (see dkim.ts); absent, it goes unsigned. */
  dkim?: Mail.Options['dkim'];
  /** Extra headers, e.g. the relay provider's custom-argument header carrying our message row id. */
  headers?: Record<string, string>;
  /** How the text parts are encoded; absent, nodemailer scans every part of every message to choose. */
  textEncoding?: Mail.TextEncoding;
}

const bracket = (id: string) => `<${id}>`;

export function toMailOptions(m: OutgoingMessage): Mail.Options {
  return {
    messageId: bracket(m.messageId),
    from: { name: m.from.name ?? '', address: m.from.email },
    to: { name: m.to.name ?? '', address: m.to.email },
    ...(m.replyTo ? { replyTo: m.replyTo } : {}),
    // nodemailer takes a custom envelope whole: it needs the recipient as well as the sender.
    ...(m.envelopeFrom ? { envelope: { from: m.envelopeFrom, to: [m.to.email] } } : {}),
    subject: m.subject,
    html: m.html,
    text: m.text,
    ...(m.inReplyTo ? { inReplyTo: bracket(m.inReplyTo) } : {}),
    ...(m.references?.length ? { references: m.references.map(bracket) } : {}),
    // Extra headers go out exactly as given: a provider parses its header as JSON or name=value, and
    // nodemailer would otherwise MIME-encode one with quotes in it (=?UTF-8?Q?…?=), which it can't read.
    headers: {
      ...Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, { prepared: true, value: v }])),
      // RFC 8058: a one-click POST to this URL unsubscribes; mailbox providers show their own button for
      // it. Written here (as nodemailer's `list` option would) so any composer builds it alike.
      'List-Unsubscribe': { prepared: true, foldLines: true, value: `<${m.unsubscribeUrl.replace(/[\s<>]/g, '')}>` },
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    },
    ...(m.dkim ? { dkim: m.dkim } : {}),
    ...(m.textEncoding ? { textEncoding: m.textEncoding } : {}),
  };
}

/**
 * The encoding nodemailer itself would choose for text like `sample` (quoted-printable for mostly Latin
 * letters, else base64), decided once for a template version instead of by scanning each message.
 */
export function textEncodingFor(sample: string): Mail.TextEncoding {
  let latin = 0;
  let other = 0;
  for (let i = 0; i < sample.length; i++) {
    const c = sample.charCodeAt(i);
    if (c <= 0x08 || c === 0x0b || c === 0x0c || (c >= 0x0e && c <= 0x1f) || c >= 0x80) other++;
    else if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) latin++;
  }
  return other < latin ? 'quoted-printable' : 'base64';
}

/** A Message-ID that is stable for the row (a retry reuses it) and names our domain. */
export function newMessageId(rowId: string, domain: string): string {
  return `${rowId}@${domain}`;
}

/** Used only when neither MESSAGE_ID_DOMAIN nor the From address names a domain (a `user@[10.0.0.1]` sender). */
const FALLBACK_MESSAGE_ID_DOMAIN = 'nurture.invalid';

/**
 * The right-hand side of a message's Message-ID, decided here and nowhere else: MESSAGE_ID_DOMAIN when
 * set, else the domain of the address the message is from. Never an IP literal: RFC 5322 asks for a
 * domain, spam filters score `@127.0.0.1` against the sender, and it tells the world the host's address.
 */
export function messageIdDomain(configured: string | null, fromEmail: string | null): string {
  if (configured && !isIpLiteral(configured)) return configured.toLowerCase();
  const domain = fromEmail ? fromEmail.slice(fromEmail.lastIndexOf('@') + 1).trim().toLowerCase() : '';
  return domain && !isIpLiteral(domain) ? domain : FALLBACK_MESSAGE_ID_DOMAIN;
}

/** `127.0.0.1`, `[10.0.0.1]`, `::1`, `[IPv6:::1]`: an address, not a name. */
export function isIpLiteral(host: string): boolean {
  const h = host.trim().replace(/^\[(?:ipv6:)?/i, '').replace(/\]$/, '');
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(h) || (h.includes(':') && /^[0-9a-f:.]+$/i.test(h));
}

/** "Re: " once, however many follow-ups deep the thread is. */
export function replySubject(subject: string): string {
  return /^re:\s/i.test(subject) ? subject : `Re: ${subject}`;
}
