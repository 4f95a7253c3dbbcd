// `nurture mailbox test OWNER`: connects to the rep's SMTP and IMAP servers as nurture would, step by step,
// and says exactly which step failed: the password reference, DNS, the connection, TLS, the login, a folder.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import nodemailer from 'nodemailer';
import type { Config } from '../config/load.js';
import type { ImapSettings, Mailbox, SmtpSettings } from '../config/mailboxes.js';
import { resolveSecret } from '../config/secrets.js';
import { describeMailboxError, MailboxError } from '../mailbox/errors.js';
import { checkFolder, closeImap, connectImap, sentFolderOf } from '../mailbox/imap.js';

export type CheckStep = 'password' | 'dns' | 'connect' | 'tls' | 'login' | 'folder';

export interface MailboxCheck {
  side: 'smtp' | 'imap';
  step: CheckStep;
  ok: boolean;
  detail: string;
}

export interface MailboxTestResult {
  owner: string;
  configured: boolean;
  ok: boolean;
  checks: MailboxCheck[];
}

const STEP_OF: Record<string, CheckStep> = { secret: 'password', dns: 'dns', connect: 'connect', timeout: 'connect', tls: 'tls', auth: 'login', folder: 'folder', protocol: 'connect' };

export async function testMailbox(config: Pick<Config, 'mailboxes' | 'dir'>, owner: string, opts: { timeoutMs?: number } = {}): Promise<MailboxTestResult> {
  const box = config.mailboxes.get(owner.toLowerCase());
  if (!box) return { owner, configured: false, ok: false, checks: [] };
  const checks: MailboxCheck[] = [];
  if (box.smtp) await testSmtp(box, box.smtp, config.dir, checks, opts.timeoutMs ?? 15_000);
  if (box.imap) await testImap(box, box.imap, config.dir, checks, opts.timeoutMs ?? 15_000);
  return { owner: box.address, configured: true, ok: checks.every((c) => c.ok), checks };
}

async function preflight(side: 'smtp' | 'imap', s: { host: string; password: string }, configDir: string, checks: MailboxCheck[]): Promise<string | null> {
  let password: string;
  try {
    password = resolveSecret(s.password, configDir);
    checks.push({ side, step: 'password', ok: true, detail: `${s.password} can be read` });
  } catch (err) {
    checks.push({ side, step: 'password', ok: false, detail: (err as Error).message });
    return null;
  }
  if (isIP(s.host.replace(/^\[|\]$/g, ''))) return password;
  try {
    const found = await lookup(s.host, { all: true });
    checks.push({ side, step: 'dns', ok: true, detail: `${s.host} resolves to ${found.map((a) => a.address).join(', ')}` });
  } catch (err) {
    checks.push({ side, step: 'dns', ok: false, detail: `the name ${s.host} does not resolve in DNS (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` });
    return null;
  }
  return password;
}

async function testSmtp(box: Mailbox, s: SmtpSettings, configDir: string, checks: MailboxCheck[], timeoutMs: number): Promise<void> {
  const password = await preflight('smtp', s, configDir, checks);
  if (password === null) return;
  const transport = nodemailer.createTransport({
    host: s.host,
    port: s.port,
    secure: s.security === 'tls',
    requireTLS: s.security === 'starttls',
    ignoreTLS: s.security === 'none',
    auth: { user: s.user, pass: password },
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });
  try {
    await transport.verify();
    checks.push({ side: 'smtp', step: 'connect', ok: true, detail: `${s.host}:${s.port} answers` });
    if (s.security !== 'none') checks.push({ side: 'smtp', step: 'tls', ok: true, detail: s.security === 'tls' ? 'implicit TLS' : 'STARTTLS' });
    checks.push({ side: 'smtp', step: 'login', ok: true, detail: `logged in as ${s.user}` });
  } catch (err) {
    const e = describeMailboxError(err, 'smtp', { host: s.host, port: s.port, user: s.user });
    passedBefore('smtp', STEP_OF[e.failure] ?? 'connect', s, checks);
    checks.push({ side: 'smtp', step: STEP_OF[e.failure] ?? 'connect', ok: false, detail: e.message });
  } finally {
    transport.close();
  }
  void box;
}

async function testImap(box: Mailbox, s: ImapSettings, configDir: string, checks: MailboxCheck[], timeoutMs: number): Promise<void> {
  if ((await preflight('imap', s, configDir, checks)) === null) return;
  let client = null;
  try {
    client = await connectImap(box.address, s, { configDir, connectionTimeoutMs: timeoutMs });
    checks.push({ side: 'imap', step: 'connect', ok: true, detail: `${s.host}:${s.port} answers` });
    if (s.security !== 'none') checks.push({ side: 'imap', step: 'tls', ok: true, detail: s.security === 'tls' ? 'implicit TLS' : 'STARTTLS' });
    checks.push({ side: 'imap', step: 'login', ok: true, detail: `logged in as ${s.user}` });
  } catch (err) {
    const e = err instanceof MailboxError ? err : describeMailboxError(err, 'imap', { host: s.host, port: s.port, user: s.user });
    passedBefore('imap', STEP_OF[e.failure] ?? 'connect', s, checks);
    checks.push({ side: 'imap', step: STEP_OF[e.failure] ?? 'connect', ok: false, detail: e.message });
    return;
  }
  const folder = async (what: string, run: () => Promise<string>) => {
    try {
      checks.push({ side: 'imap', step: 'folder', ok: true, detail: await run() });
    } catch (err) {
      checks.push({ side: 'imap', step: 'folder', ok: false, detail: err instanceof MailboxError ? err.message : `${what}: ${(err as Error).message}` });
    }
  };
  try {
    await folder('inbox', async () => (await checkFolder(client, s.inbox, 'inbox'), `inbox "${s.inbox}" found`));
    if (s.copyToSent) await folder('sent', async () => `copies go to "${await sentFolderOf(client, s)}"`);
    if (s.moveTo) await folder('moveTo', async () => (await checkFolder(client, s.moveTo!, 'moveTo'), `read mail moves to "${s.moveTo}"`));
  } finally {
    await closeImap(client);
  }
}

/** The steps before the one that failed did pass: say so, so the report reads top to bottom. */
function passedBefore(side: 'smtp' | 'imap', failed: CheckStep, s: { host: string; port: number; security: string }, checks: MailboxCheck[]): void {
  if (failed === 'tls' || failed === 'login') checks.push({ side, step: 'connect', ok: true, detail: `${s.host}:${s.port} answers` });
  if (failed === 'login' && s.security !== 'none') checks.push({ side, step: 'tls', ok: true, detail: s.security === 'tls' ? 'implicit TLS' : 'STARTTLS' });
}
