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
  subject: string;
  html: string;
  text: string;
  inReplyTo?: string | null;
  references?: string[];
  unsubscribeUrl: string;
  /** This message's DKIM key (see dkim.ts); absent, it goes unsigned. */
  dkim?: Mail.Options['dkim'];
}

const bracket = (id: string) => `<${id}>`;

export function toMailOptions(m: OutgoingMessage): Mail.Options {
  return {
    messageId: bracket(m.messageId),
    from: { name: m.from.name ?? '', address: m.from.email },
    to: { name: m.to.name ?? '', address: m.to.email },
    ...(m.replyTo ? { replyTo: m.replyTo } : {}),
    subject: m.subject,
    html: m.html,
    text: m.text,
    ...(m.inReplyTo ? { inReplyTo: bracket(m.inReplyTo) } : {}),
    ...(m.references?.length ? { references: m.references.map(bracket) } : {}),
    // RFC 8058: a one-click POST to this URL unsubscribes; mailbox providers show their own button for it.
    list: { unsubscribe: m.unsubscribeUrl },
    headers: { 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
    ...(m.dkim ? { dkim: m.dkim } : {}),
  };
}

/** A Message-ID that is stable for the row (a retry reuses it) and names our domain. */
export function newMessageId(rowId: string, domain: string): string {
  return `${rowId}@${domain}`;
}

/** "Re: " once, however many follow-ups deep the thread is. */
export function replySubject(subject: string): string {
  return /^re:\s/i.test(subject) ? subject : `Re: ${subject}`;
}
