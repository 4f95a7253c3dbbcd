// One pooled SMTP transport per rep's mailbox, made when first needed and closed with the context. Each is
// an ordinary nurture transport (src/mail/transport.ts: the send probe and the claim-when-connected slots
// work as for the relay), plus two things the rep's own server needs:
//  - the message is built once, here, into its final bytes (DKIM signature included) and sent as those raw
//    bytes, which are kept until the send's outcome is known: the copy filed in the rep's Sent folder is the
//    very message that went out, Message-ID and all;
//  - the envelope sender is the rep's own address (a provider refuses or rewrites any other), so bounces
//    come back to the rep's inbox, where the watcher reads them; relay-provider headers are left off.
// A refused login is the mailbox's problem, not the recipient's: it is retried like a 4xx, never a bounce,
// and the transport is made again (with the password read again) for the next try.
import nodemailer, { type Transporter } from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import type { Mailbox, Mailboxes, SmtpSettings } from '../config/mailboxes.js';
import { resolveSecret, SecretError } from '../config/secrets.js';
import { createTransport } from '../mail/transport.js';
import { describeMailboxError, MailboxError } from './errors.js';

/** Headers meant for a relay provider's event matching (see engagement/providers/relay.ts): not for a rep's server. */
const RELAY_HEADERS = /^(x-smtpapi|x-pm-metadata-.*|x-mailgun-variables|x-ses-message-tags)$/i;
/** Raw messages held for their Sent copy: bounded, in case a send never reports back. */
const MAX_HELD = 500;

export class MailboxTransports {
  private readonly transports = new Map<string, Transporter>();
  private readonly held = new Map<string, Buffer>();
  private readonly composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });

  constructor(
    private readonly mailboxes: Mailboxes,
    private readonly configDir: string,
  ) {}

  /** The mailbox for an address when it sends (has smtp), else null. */
  mailboxFor(address: string): Mailbox | null {
    const box = this.mailboxes.get(address.toLowerCase());
    return box?.smtp ? box : null;
  }

  /** The mailbox's pooled transport, made on first use. Throws MailboxError when its password can't be read. */
  transportFor(box: Mailbox): Transporter {
    const existing = this.transports.get(box.address);
    if (existing) return existing;
    const smtp = box.smtp!;
    const transport = createTransport(smtpUrl(box.address, smtp, this.configDir), { poolSize: smtp.pool });
    transport.use('compile', (mail, done) => {
      this.compose(box, mail.data as Mail.Options).then(() => done(), (err: Error) => done(err));
    });
    // sendTracked awaits the promise form; a refused login must read as a temporary failure.
    const sendMail = transport.sendMail.bind(transport) as (o: Mail.Options) => Promise<unknown>;
    (transport as unknown as { sendMail: typeof sendMail }).sendMail = (options: Mail.Options) =>
      sendMail(options).catch((err: unknown) => {
        const e = err as { code?: string; responseCode?: number; command?: string; message?: string };
        if (e?.code === 'EAUTH' || e?.command?.toUpperCase().startsWith('AUTH')) {
          this.drop(box.address, transport);
          const described = describeMailboxError(err, 'smtp', { host: smtp.host, port: smtp.port, user: smtp.user });
          // No reply code: smtpOutcome reads it by its command (AUTH, before DATA) as "retry".
          throw Object.assign(new Error(`mailbox ${box.address}: ${described.message}`), { code: 'EAUTH', command: e.command ?? 'AUTH PLAIN' });
        }
        throw err;
      });
    this.transports.set(box.address, transport);
    return transport;
  }

  /** The exact bytes of a message this registry sent (or tried to), once: for its Sent copy. */
  takeRaw(messageId: string): Buffer | null {
    const key = messageId.replace(/^<|>$/g, '');
    const raw = this.held.get(key) ?? null;
    this.held.delete(key);
    return raw;
  }

  /** Forgets a transport (its login failed): the next send makes a new one, reading the password again. */
  drop(address: string, transport?: Transporter): void {
    const t = this.transports.get(address);
    if (!t || (transport && t !== transport)) return;
    this.transports.delete(address);
    // Let sends in flight on it finish; close once they have.
    setTimeout(() => t.close(), 30_000).unref();
  }

  close(): void {
    for (const t of this.transports.values()) t.close();
    this.transports.clear();
    this.held.clear();
    this.composer.close();
  }

  /** Builds the message into its final bytes and swaps the options for those bytes and the rep's envelope. */
  private async compose(box: Mailbox, data: Mail.Options): Promise<void> {
    if (data.raw) return;
    const headers = Object.fromEntries(Object.entries((data.headers as Record<string, unknown>) ?? {}).filter(([k]) => !RELAY_HEADERS.test(k)));
    const { envelope: _verp, ...rest } = data;
    const built = (await this.composer.sendMail({ ...rest, headers } as Mail.Options)) as { message: Buffer; envelope: { to: string[] } };
    const to = built.envelope.to;
    const key = String(data.messageId ?? '').replace(/^<|>$/g, '');
    if (key) {
      if (this.held.size >= MAX_HELD) this.held.delete(this.held.keys().next().value!);
      this.held.set(key, built.message);
    }
    // The probe the send path put on the options stays; everything the composer used goes.
    for (const k of ['html', 'text', 'headers', 'list', 'dkim', 'subject', 'from', 'to', 'cc', 'bcc', 'replyTo', 'inReplyTo', 'references', 'attachments', 'alternatives', 'envelope'] as const) delete (data as Record<string, unknown>)[k];
    data.raw = built.message;
    data.envelope = { from: box.address, to };
  }
}

function smtpUrl(address: string, s: SmtpSettings, configDir: string): string {
  let password: string;
  try {
    password = resolveSecret(s.password, configDir);
  } catch (err) {
    if (err instanceof SecretError) throw new MailboxError('secret', 'smtp', `mailbox ${address}: SMTP password: ${err.message}`);
    throw err;
  }
  const scheme = s.security === 'tls' ? 'smtps' : 'smtp';
  const tls = s.security === 'starttls' ? '?tls=require' : s.security === 'none' ? '?tls=off' : '';
  const host = s.host.includes(':') && !s.host.startsWith('[') ? `[${s.host}]` : s.host;
  return `${scheme}://${encodeURIComponent(s.user)}:${encodeURIComponent(password)}@${host}:${s.port}${tls}`;
}
