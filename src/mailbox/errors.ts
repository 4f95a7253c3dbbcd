// What went wrong talking to a rep's mail server, said so the rep or an operator can act on it: the name
// did not resolve, nothing listened, TLS failed, the password was refused, a folder is missing. Pure:
// from the error fields that nodemailer, imapflow and Node set.

export type MailboxFailure = 'secret' | 'dns' | 'connect' | 'timeout' | 'tls' | 'auth' | 'folder' | 'protocol';

export class MailboxError extends Error {
  constructor(
    readonly failure: MailboxFailure,
    /** `smtp` or `imap`: which server. */
    readonly side: 'smtp' | 'imap',
    message: string,
  ) {
    super(message);
    this.name = 'MailboxError';
  }
  get code(): string {
    return `mailbox_${this.failure}`;
  }
}

interface ErrorLike {
  code?: string;
  message?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  authenticationFailed?: boolean;
  serverResponseCode?: string;
  responseText?: string;
  cause?: unknown;
}

const DNS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NODATA', 'EAI_NONAME', 'EDNS']);
const REFUSED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'EADDRNOTAVAIL']);
const TLS_CODES = /^(ETLS|EPROTO|ERR_SSL_|ERR_TLS_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(VERIFY|GET)_|HOSTNAME_MISMATCH)/;

/** One plain sentence naming the server, the stage that failed and what the server or system said. */
export function describeMailboxError(err: unknown, side: 'smtp' | 'imap', where: { host: string; port: number; user: string }): MailboxError {
  if (err instanceof MailboxError) return err;
  const e = (err ?? {}) as ErrorLike;
  const inner = (e.cause ?? {}) as ErrorLike;
  const code = e.code ?? inner.code ?? '';
  const raw = (e.responseText ?? e.response ?? e.message ?? String(err)).trim();
  const server = `${side.toUpperCase()} ${where.host}:${where.port}`;
  const said = raw ? `: ${raw}` : '';
  if (e.authenticationFailed || code === 'EAUTH' || e.serverResponseCode === 'AUTHENTICATIONFAILED' || (side === 'smtp' && e.command?.startsWith('AUTH'))) {
    return new MailboxError('auth', side, `${server} refused the login of ${where.user} (authentication failed${said.replace(/^: /, ': ')}): check the user and password`);
  }
  if (DNS.has(code) || /getaddrinfo|ENOTFOUND|EAI_AGAIN/.test(raw)) {
    return new MailboxError('dns', side, `${server}: the name ${where.host} does not resolve in DNS (${code || 'lookup failed'})`);
  }
  if (TLS_CODES.test(code) || TLS_CODES.test(inner.code ?? '') || /\b(SSL|TLS|certificate|wrong version number|STARTTLS)\b/i.test(raw)) {
    return new MailboxError('tls', side, `${server}: TLS failed${said} (is security set right: tls on 465/993, starttls on 587/143?)`);
  }
  if (REFUSED.has(code) || /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH/.test(raw)) {
    return new MailboxError('connect', side, `${server}: cannot connect (${code || raw})`);
  }
  if (code === 'ETIMEDOUT' || code === 'ETIMEOUT' || /timed? ?out/i.test(raw)) {
    return new MailboxError('timeout', side, `${server}: no answer in time${said}`);
  }
  if (code === 'ESOCKET' || code === 'ECONNECTION' || code === 'NoConnection' || /connection (closed|not available)|socket/i.test(raw)) {
    return new MailboxError('connect', side, `${server}: the connection was lost${said}`);
  }
  return new MailboxError('protocol', side, `${server}${said || ': failed'}`);
}
