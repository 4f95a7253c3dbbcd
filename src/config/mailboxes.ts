// The reps' own mailboxes (config/mailboxes.yaml, optional): SMTP submission to send one-to-one mail as the
// rep, IMAP to file a copy in their Sent folder and to read the replies that land in their inbox.
// Passwords are references (env:NAME or file:PATH), never the secret itself; documented in docs/mailboxes.md.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { isDuration, parseDuration } from './duration.js';
import type { ConfigIssue } from './issues.js';
import { parseYaml, type PositionedYaml } from './yaml.js';

export const MAILBOXES_FILE = 'mailboxes.yaml';

/** `env:NAME` or `file:PATH`; checked beside the schema so that an inline password is never echoed back. */
const secretRef = z.string().min(1);
const SECRET_REF = /^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/;

const host = z.string().regex(/^[A-Za-z0-9.-]+$|^\[[0-9a-fA-F:.]+\]$/, 'expected a host name such as smtp.example.com');
const port = z.number().int().min(1).max(65535);
const duration = z.string().refine(isDuration, { message: 'expected a duration such as 30s, 5m or 1h' });

/** How the connection is protected: implicit TLS (465, 993), STARTTLS required (587, 143), or none (loopback only). */
export const SECURITY = ['tls', 'starttls', 'none'] as const;

const MailboxSmtpSchema = z.strictObject({
  host,
  /** Default: 465 with `tls`, else 587. */
  port: port.optional(),
  security: z.enum(SECURITY).default('starttls'),
  user: z.string().min(1),
  password: secretRef,
  /** Pooled connections to this server (providers allow a few per mailbox). */
  pool: z.number().int().min(1).max(10).default(2),
  /** The provider's own sending limits for one mailbox: sends beyond them wait, like any rate limit. */
  limits: z
    .strictObject({
      perMinute: z.number().int().positive().optional(),
      /** Per UTC day. */
      perDay: z.number().int().positive().optional(),
    })
    .default({ perMinute: 20, perDay: 500 }),
});

const MailboxImapSchema = z.strictObject({
  host,
  /** Default: 993 with `tls`, else 143. */
  port: port.optional(),
  security: z.enum(SECURITY).default('tls'),
  /** Default: the SMTP user and password. */
  user: z.string().min(1).optional(),
  password: secretRef.optional(),
  folders: z
    .strictObject({
      /** Where replies arrive. */
      inbox: z.string().min(1).default('INBOX'),
      /** Where the copy of each sent message goes: `auto` finds the folder the server marks \Sent. */
      sent: z.string().min(1).default('auto'),
    })
    .default({ inbox: 'INBOX', sent: 'auto' }),
  /**
   * File a copy of each message sent through this mailbox in its Sent folder. Default: on, except when the
   * SMTP server is Gmail's or Microsoft 365's, which file mail sent through them themselves (a second copy
   * would show the message twice).
   */
  copyToSent: z.boolean().optional(),
  /** How often to look for new mail when IDLE is unavailable or quiet (IDLE tells at once where it works). */
  poll: duration.refine((d) => !isDuration(d) || parseDuration(d) >= 1000, { message: 'expected at least 1s' }).default('60s'),
  /** Nurture only reads: set to mark the mail it read as read (\Seen) in the rep's mailbox. */
  markSeen: z.boolean().default(false),
  /** Set to move the mail nurture read out of the inbox into this folder. */
  moveTo: z.string().min(1).optional(),
});

export const MailboxSchema = z
  .strictObject({
    smtp: MailboxSmtpSchema.optional(),
    imap: MailboxImapSchema.optional(),
  })
  .refine((m) => m.smtp !== undefined || m.imap !== undefined, { message: 'a mailbox needs smtp (to send as the rep), imap (to read replies), or both' });

export const MailboxesSchema = z.strictObject({
  $schema: z.string().optional(),
  /** Keyed by the owner's (rep's) email address, as leads carry it in `owner.email`. */
  mailboxes: z.record(z.email(), MailboxSchema).default({}),
});
export type MailboxesInput = z.infer<typeof MailboxesSchema>;
type MailboxInput = z.infer<typeof MailboxSchema>;

export interface SmtpSettings {
  host: string;
  port: number;
  security: (typeof SECURITY)[number];
  user: string;
  password: string;
  pool: number;
  limits: { perMinute?: number | undefined; perDay?: number | undefined };
}

export interface ImapSettings {
  host: string;
  port: number;
  security: (typeof SECURITY)[number];
  user: string;
  password: string;
  inbox: string;
  sent: string;
  copyToSent: boolean;
  pollMs: number;
  markSeen: boolean;
  moveTo: string | null;
}

/** One rep's mailbox, defaults filled in; passwords still references (see secrets.ts). */
export interface Mailbox {
  /** The owner's address, lower case: the key everything uses. */
  address: string;
  smtp: SmtpSettings | null;
  imap: ImapSettings | null;
}

export type Mailboxes = Map<string, Mailbox>;

export function normaliseMailbox(address: string, m: MailboxInput): Mailbox {
  const smtp: SmtpSettings | null = m.smtp
    ? { host: m.smtp.host, port: m.smtp.port ?? (m.smtp.security === 'tls' ? 465 : 587), security: m.smtp.security, user: m.smtp.user, password: m.smtp.password, pool: m.smtp.pool, limits: m.smtp.limits }
    : null;
  const imap: ImapSettings | null = m.imap
    ? {
        host: m.imap.host,
        port: m.imap.port ?? (m.imap.security === 'tls' ? 993 : 143),
        security: m.imap.security,
        user: m.imap.user ?? m.smtp?.user ?? '',
        password: m.imap.password ?? m.smtp?.password ?? '',
        inbox: m.imap.folders.inbox,
        sent: m.imap.folders.sent,
        copyToSent: m.imap.copyToSent ?? !(m.smtp && filesSentItself(m.smtp.host)),
        pollMs: parseDuration(m.imap.poll),
        markSeen: m.imap.markSeen,
        moveTo: m.imap.moveTo ?? null,
      }
    : null;
  return { address: address.toLowerCase(), smtp, imap };
}

/** SMTP submission servers that put what they send in the mailbox's Sent folder themselves (Google, Microsoft). */
const FILES_SENT_ITSELF = /^(smtp\.gmail\.com|smtp\.googlemail\.com|smtp\.office365\.com|smtp-mail\.outlook\.com|outlook\.office365\.com)$/i;

export function filesSentItself(smtpHost: string): boolean {
  return FILES_SENT_ITSELF.test(smtpHost.replace(/\.$/, ''));
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[?::1\]?)$/i;

/**
 * Reads config/mailboxes.yaml when it exists. `validateYaml` is the config loader's schema check (shared
 * so the messages and positions read like every other file's). An absent file is no mailboxes at all.
 */
export function inspectMailboxes(
  dir: string,
  show: (p: string) => string,
  validateYaml: <T extends z.ZodType>(y: PositionedYaml, schema: T, issues: ConfigIssue[]) => z.infer<T> | null,
): { mailboxes: Mailboxes | null; issues: ConfigIssue[] } {
  const file = join(dir, MAILBOXES_FILE);
  if (!existsSync(file)) return { mailboxes: new Map(), issues: [] };
  return checkMailboxesYaml(parseYaml(show(file), readFileSync(file, 'utf8')), validateYaml);
}

export function checkMailboxesYaml(
  y: PositionedYaml,
  validateYaml: <T extends z.ZodType>(y: PositionedYaml, schema: T, issues: ConfigIssue[]) => z.infer<T> | null,
): { mailboxes: Mailboxes | null; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const err = (path: (string | number)[], code: string, message: string, key = false) => issues.push({ file: y.file, ...y.at(path, { key }), code, message, severity: 'error' });
  // Secrets first, on the raw data: an inline password is an error that never repeats the password.
  const raw = (y.data ?? {}) as { mailboxes?: Record<string, { smtp?: { password?: unknown }; imap?: { password?: unknown } }> };
  const rawBoxes = raw && typeof raw === 'object' && raw.mailboxes && typeof raw.mailboxes === 'object' ? raw.mailboxes : {};
  for (const [owner, box] of Object.entries(rawBoxes)) {
    for (const side of ['smtp', 'imap'] as const) {
      const p = box && typeof box === 'object' ? box[side]?.password : undefined;
      if (typeof p === 'string' && !SECRET_REF.test(p)) {
        err(['mailboxes', owner, side, 'password'], 'inline_secret', `mailboxes.${owner}.${side}.password is written inline: give a reference instead, env:VARIABLE_NAME or file:path/to/secret (relative to the config folder), and keep the password itself out of the configuration`);
      }
    }
  }
  const parsed = validateYaml(y, MailboxesSchema, issues);
  const failed = () => issues.some((i) => i.severity === 'error');
  // Each mailbox that passed the schema on its own is checked further, even when another one did not.
  const mailboxes: Mailboxes = new Map();
  for (const [owner, given] of Object.entries(rawBoxes)) {
    const one = MailboxSchema.safeParse(given);
    if (!one.success) continue;
    const input = one.data;
    const address = owner.toLowerCase();
    if (mailboxes.has(address)) {
      err(['mailboxes', owner], 'duplicate_mailbox', `a mailbox for ${address} is already configured (addresses are compared without case)`, true);
      continue;
    }
    const box = normaliseMailbox(address, input);
    if (input.imap && !input.smtp && (!input.imap.user || !input.imap.password)) {
      err(['mailboxes', owner, 'imap'], 'missing_key', `mailboxes.${owner}.imap needs user and password when there is no smtp section to take them from`);
    }
    for (const side of ['smtp', 'imap'] as const) {
      const s = box[side];
      if (s?.security === 'none' && !LOOPBACK.test(s.host)) {
        err(['mailboxes', owner, side, 'security'], 'insecure_mailbox', `mailboxes.${owner}.${side}: security none sends the password in clear text; it is allowed only to a server on this machine (127.0.0.1, localhost), use tls or starttls for ${s.host}`);
      }
    }
    if (box.imap?.moveTo && box.imap.moveTo === box.imap.inbox) err(['mailboxes', owner, 'imap', 'moveTo'], 'invalid_value', `mailboxes.${owner}.imap.moveTo is the inbox itself`);
    mailboxes.set(address, box);
  }
  if (!parsed) return { mailboxes: null, issues: inOrder(issues) };
  return { mailboxes: failed() ? null : mailboxes, issues: inOrder(issues) };
}

function inOrder(issues: ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => a.line - b.line || a.column - b.column);
}
