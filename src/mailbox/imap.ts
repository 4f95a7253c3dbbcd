// The IMAP side of a rep's mailbox, through imapflow: connect (the password read from its reference at
// each connection, so a changed password file is picked up), find the Sent folder, file a copy there.
// No business rules: the watcher and the use cases decide what to read and what to record.
import { isIP } from 'node:net';
import { ImapFlow } from 'imapflow';
import type { ImapSettings } from '../config/mailboxes.js';
import { resolveSecret, SecretError } from '../config/secrets.js';
import { describeMailboxError, MailboxError } from './errors.js';

export interface ImapOptions {
  /** Where `file:` references are relative to. */
  configDir: string;
  connectionTimeoutMs?: number;
}

/** A client, not yet connected. Always has an `error` listener: a dropped socket never crashes the process. */
export function imapClient(address: string, s: ImapSettings, o: ImapOptions): ImapFlow {
  let password: string;
  try {
    password = resolveSecret(s.password, o.configDir);
  } catch (err) {
    if (err instanceof SecretError) throw new MailboxError('secret', 'imap', `mailbox ${address}: IMAP password: ${err.message}`);
    throw err;
  }
  const client = new ImapFlow({
    host: s.host,
    port: s.port,
    secure: s.security === 'tls',
    // STARTTLS is required when asked for; never silently in clear text.
    doSTARTTLS: s.security === 'starttls' ? true : s.security === 'none' ? false : undefined,
    // SNI names a host, never an address (RFC 6066); the certificate is verified against `host` either way.
    ...(isIP(s.host.replace(/^\[|\]$/g, '')) ? {} : { servername: s.host }),
    auth: { user: s.user, pass: password },
    logger: false,
    connectionTimeout: o.connectionTimeoutMs ?? 15_000,
    greetingTimeout: o.connectionTimeoutMs ?? 15_000,
    clientInfo: { name: 'nurture' },
    // IDLE soon after each command: new mail is announced at once instead of at the next poll.
    autoIdleDelay: 1_000,
  });
  client.on('error', () => {});
  return client;
}

/** Connects and logs in; a failure is a MailboxError that says which stage failed. */
export async function connectImap(address: string, s: ImapSettings, o: ImapOptions): Promise<ImapFlow> {
  const client = imapClient(address, s, o);
  try {
    await client.connect();
    return client;
  } catch (err) {
    client.close();
    throw describeMailboxError(err, 'imap', { host: s.host, port: s.port, user: s.user });
  }
}

/** The folder copies go to: the configured name, or with `auto` the one the server marks \Sent. */
export async function sentFolderOf(client: ImapFlow, s: ImapSettings): Promise<string> {
  const folders = await client.list();
  if (s.sent !== 'auto') {
    if (!folders.some((f) => f.path === s.sent)) throw new MailboxError('folder', 'imap', `the Sent folder "${s.sent}" does not exist; the mailbox has ${folders.map((f) => f.path).join(', ')}`);
    return s.sent;
  }
  const marked = folders.find((f) => f.specialUse === '\\Sent') ?? folders.find((f) => /^(sent|sent items|sent messages|gesendet|envoyés)$/i.test(f.name));
  if (!marked) throw new MailboxError('folder', 'imap', `no folder is marked as Sent (\\Sent): set imap.folders.sent to one of ${folders.map((f) => f.path).join(', ')}`);
  return marked.path;
}

/** Fails with a MailboxError when the folder is missing: `what` names its role in the message. */
export async function checkFolder(client: ImapFlow, folder: string, what: string): Promise<void> {
  const status = await client.status(folder, { messages: true, uidValidity: true }).catch(() => false as const);
  if (!status) {
    const folders = await client.list().catch(() => []);
    throw new MailboxError('folder', 'imap', `the ${what} folder "${folder}" does not exist${folders.length ? `; the mailbox has ${folders.map((f) => f.path).join(', ')}` : ''}`);
  }
}

export async function closeImap(client: ImapFlow | null): Promise<void> {
  if (!client) return;
  // LOGOUT politely when the connection is alive; never wait long for a dead one.
  if (client.usable) await Promise.race([client.logout().catch(() => {}), new Promise((r) => setTimeout(r, 2_000).unref())]);
  client.close();
}
