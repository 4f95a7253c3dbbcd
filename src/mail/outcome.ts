// What an SMTP failure means for the message. Pure: from nodemailer's error fields only.
export type SmtpOutcome =
  | { kind: 'retry'; reason: string }
  | { kind: 'uncertain'; reason: string }
  | { kind: 'bounce'; reason: string; status: string | null; permanent: boolean };

interface SmtpErrorLike {
  code?: string;
  command?: string;
  responseCode?: number;
  response?: string;
  message?: string;
}

// Commands before the message body: a failure here means nothing was handed over.
const BEFORE_DATA = new Set(['CONN', 'EHLO', 'HELO', 'LHLO', 'STARTTLS', 'AUTH PLAIN', 'AUTH LOGIN', 'AUTH XOAUTH2', 'AUTH CRAM-MD5', 'MAIL FROM', 'RCPT TO', 'RSET']);
const NO_CONNECTION = new Set(['ECONNECTION', 'ECONNREFUSED', 'EDNS', 'ETLS', 'EAUTH', 'ENOTFOUND', 'EHOSTUNREACH']);

/**
 * `phase` is where the send got to, when the transport could tell (see transport.ts): a connection lost
 * once the message had begun to flow may have delivered it, one lost before that cannot have.
 */
export function smtpOutcome(err: unknown, phase: 'before_data' | 'data' | null = null): SmtpOutcome {
  const e = (err ?? {}) as SmtpErrorLike;
  const reply = (e.response ?? e.message ?? String(err)).trim();
  if (typeof e.responseCode === 'number') {
    if (e.responseCode >= 500) {
      const status = enhancedStatus(reply);
      return { kind: 'bounce', reason: reply, status, permanent: isPermanentFailure(status) };
    }
    if (e.responseCode >= 400) return { kind: 'retry', reason: reply };
  }
  const command = e.command?.toUpperCase();
  if (phase === 'data') return { kind: 'uncertain', reason: `${reply} (while the message was being handed over)` };
  if (phase === 'before_data') return { kind: 'retry', reason: reply };
  // Once DATA has begun the relay may hold the message, whatever the socket error says.
  if (command === 'DATA') return { kind: 'uncertain', reason: `${reply} (during DATA)` };
  if ((e.code && NO_CONNECTION.has(e.code)) || (command && BEFORE_DATA.has(command))) {
    return { kind: 'retry', reason: reply };
  }
  return { kind: 'uncertain', reason: `${reply}${e.command ? ` (during ${e.command})` : ''}` };
}

/** RFC 3463 enhanced status code from an SMTP reply, e.g. "5.1.1". */
export function enhancedStatus(reply: string): string | null {
  return /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply)?.[1] ?? null;
}

/**
 * Only an address that does not exist (5.1.x: bad mailbox, bad domain) proves it dead. A policy block
 * (5.7.x) or a full mailbox (5.2.2) says nothing final about the person.
 */
export function isPermanentFailure(status: string | null): boolean {
  return status === null || status.startsWith('5.1.');
}
