// The reps' mailboxes as configured (mailboxes.yaml) and the pure parts around them: secrets only by
// reference (an inline password is an error with its position that never repeats the password), defaults,
// the reconnect backoff, how a server's failure is named, and which rate limits a send counts against.
import { mkdtempSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inspectConfig, loadConfig, validate } from '../../src/config/load.js';
import { checkMailboxesYaml } from '../../src/config/mailboxes.js';
import { resolveSecret, SecretError } from '../../src/config/secrets.js';
import { parseYaml } from '../../src/config/yaml.js';
import { describeMailboxError } from '../../src/mailbox/errors.js';
import { limitCountersFor } from '../../src/mailbox/route.js';
import { failuresAfter, reconnectDelayMs, STABLE_SESSION_MS } from '../../src/mailbox/watcher.js';
import { isTransient, isUnreadable } from '../../src/usecases/receiveMailboxMessage.js';
import { readFileSync } from 'node:fs';

const check = (text: string) => checkMailboxesYaml(parseYaml('config/mailboxes.yaml', text), validate);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('mailboxes.yaml', () => {
  it('refuses an inline password at its line and column, without repeating it', () => {
    const { mailboxes, issues } = check(`mailboxes:
  sam@handrail.example:
    smtp: { host: smtp.example.com, user: sam, password: "hunter2-secret" }
`);
    expect(mailboxes).toBeNull();
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ file: 'config/mailboxes.yaml', line: 3, column: 58, code: 'inline_secret', severity: 'error' });
    expect(issues[0]!.message).toContain('env:VARIABLE_NAME or file:');
    expect(JSON.stringify(issues)).not.toContain('hunter2');
  });

  it('fills in defaults and takes IMAP credentials from SMTP', () => {
    const { mailboxes, issues } = check(`mailboxes:
  Sam@Handrail.example:
    smtp: { host: smtp.example.com, security: tls, user: sam, password: env:SAM_PW }
    imap: { host: imap.example.com }
`);
    expect(issues).toEqual([]);
    const box = mailboxes!.get('sam@handrail.example')!;
    expect(box.smtp).toMatchObject({ port: 465, security: 'tls', pool: 2, limits: { perMinute: 20, perDay: 500 } });
    expect(box.imap).toMatchObject({ port: 993, security: 'tls', user: 'sam', password: 'env:SAM_PW', inbox: 'INBOX', sent: 'auto', copyToSent: true, pollMs: 60_000, markSeen: false, moveTo: null });
  });

  it('files no Sent copy by default where the provider (Gmail, Microsoft 365) files SMTP-sent mail itself, unless told to', () => {
    const { mailboxes, issues } = check(`mailboxes:
  g@handrail.example:
    smtp: { host: smtp.gmail.com, user: g, password: env:G }
    imap: { host: imap.gmail.com }
  m@handrail.example:
    smtp: { host: SMTP.Office365.com, user: m, password: env:M }
    imap: { host: outlook.office365.com }
  f@handrail.example:
    smtp: { host: smtp.fastmail.com, user: f, password: env:F }
    imap: { host: imap.fastmail.com }
  o@handrail.example:
    smtp: { host: smtp.office365.com, user: o, password: env:O }
    imap: { host: outlook.office365.com, copyToSent: true }
`);
    expect(issues).toEqual([]);
    expect(Object.fromEntries([...mailboxes!.values()].map((b) => [b.address, b.imap!.copyToSent]))).toEqual({ 'g@handrail.example': false, 'm@handrail.example': false, 'f@handrail.example': true, 'o@handrail.example': true });
  });

  it('reports clear text to a remote server, IMAP without credentials, an empty mailbox and unknown keys', () => {
    const { issues } = check(`mailboxes:
  a@handrail.example:
    smtp: { host: smtp.example.com, security: none, user: a, password: env:A }
  b@handrail.example:
    imap: { host: imap.example.com }
  c@handrail.example: {}
  d@handrail.example:
    smtp: { host: smtp.example.com, user: d, password: env:D, polling: 3 }
`);
    expect(issues.map((i) => `${i.line}:${i.code}`)).toEqual(['3:insecure_mailbox', '5:missing_key', '6:invalid_value', '8:unknown_key']);
    expect(issues[0]!.message).toContain('clear text');
  });

  it('is optional: without the file there are no mailboxes, and the sample config and example load', () => {
    const config = loadConfig('config', { templatesDir: 'templates' });
    expect(config.mailboxes.size).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'nurture-mbx-'));
    dirs.push(dir);
    cpSync('config', dir, { recursive: true });
    writeFileSync(join(dir, 'mailboxes.yaml'), readFileSync('examples/mailboxes.yaml'));
    const { config: withExample, issues } = inspectConfig(dir, { templatesDir: 'templates' });
    expect(issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect([...withExample!.mailboxes.keys()]).toEqual(['sam@handrail.example', 'priya@handrail.example']);
    expect(withExample!.mailboxes.get('priya@handrail.example')!.imap).toMatchObject({ sent: '[Gmail]/Sent Mail', copyToSent: false });
  });
});

describe('secrets by reference', () => {
  it('reads env: and file: (relative to the config folder, without the trailing newline), and says what is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nurture-secret-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'pw'), 'p@ss word\n');
    expect(resolveSecret('file:pw', dir)).toBe('p@ss word');
    expect(resolveSecret('env:X_PW', dir, { X_PW: 'from-env' })).toBe('from-env');
    expect(() => resolveSecret('env:NOPE', dir, {})).toThrow(SecretError);
    expect(() => resolveSecret('env:NOPE', dir, {})).toThrow(/NOPE is not set/);
    expect(() => resolveSecret('file:missing', dir)).toThrow(/cannot read .*missing \(ENOENT\)/);
  });
});

describe('the watcher backoff and failure names', () => {
  it('doubles from the base up to the cap, with at most 20 % jitter', () => {
    const b = { baseMs: 1000, maxMs: 8000 };
    expect([1, 2, 3, 4, 5, 9].map((n) => reconnectDelayMs(n, b, () => 0))).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    expect(reconnectDelayMs(1, b, () => 0.999)).toBeLessThanOrEqual(1200);
  });

  it('keeps backing off from a server that takes the login and drops the connection at once; a session that stayed up starts over', () => {
    // Logged in, dropped within seconds, again and again: 1, 2, 3, … (not 1 each time, a login every 2 s).
    let failures = 0;
    for (let i = 0; i < 4; i++) failures = failuresAfter(failures, 1_500);
    expect(failures).toBe(4);
    // Never reached the inbox (refused login, DNS): counts on too.
    expect(failuresAfter(4, null)).toBe(5);
    // Up for a minute or more: the drop is news, and the backoff starts from its base again.
    expect(failuresAfter(4, STABLE_SESSION_MS)).toBe(1);
  });

  it('tells a message nurture cannot record from the database or network being away', () => {
    // Postgres refuses the value (a NUL: 22P05, 22021), drizzle wrapping the driver's error as `cause`; the parser's limits.
    expect(isUnreadable({ code: '22P05' })).toBe(true);
    expect(isUnreadable({ message: 'Failed query', cause: { code: '22021' } })).toBe(true);
    expect(isUnreadable({ code: 'EMAXLEN' })).toBe(true);
    for (const away of [{ code: 'ECONNREFUSED' }, { code: 'CONNECTION_CLOSED' }, { cause: { code: '57P01' } }, { code: '40P01' }, { code: '53300' }]) {
      expect(isTransient(away)).toBe(true);
      expect(isUnreadable(away)).toBe(false);
    }
    expect(isTransient(new TypeError('x is undefined'))).toBe(false);
  });

  it('names DNS, connection, TLS and login failures', () => {
    const at = { host: 'imap.example.com', port: 993, user: 'sam' };
    expect(describeMailboxError(Object.assign(new Error('getaddrinfo ENOTFOUND imap.example.com'), { code: 'ENOTFOUND' }), 'imap', at).failure).toBe('dns');
    expect(describeMailboxError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'imap', at).failure).toBe('connect');
    expect(describeMailboxError(Object.assign(new Error('wrong version number'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }), 'imap', at).failure).toBe('tls');
    const auth = describeMailboxError(Object.assign(new Error('Invalid login: 535 5.7.8 nope'), { code: 'EAUTH', responseCode: 535, command: 'AUTH PLAIN' }), 'smtp', { ...at, port: 587 });
    expect(auth.failure).toBe('auth');
    expect(auth.message).toContain('SMTP imap.example.com:587 refused the login of sam');
    expect(describeMailboxError(Object.assign(new Error('Command failed'), { authenticationFailed: true, serverResponseCode: 'AUTHENTICATIONFAILED' }), 'imap', at).failure).toBe('auth');
  });
});

describe('rate limits of a send through a mailbox', () => {
  const sending = { limits: [{ perSecond: 5 }, { domain: 'handrail.example', perDay: 1000 }], warmup: undefined };
  const now = new Date('2026-03-02T10:00:30Z');
  it('through the relay: the configured limits, as before', () => {
    expect(limitCountersFor({ mailbox: null }, sending, 'handrail.example', now).map((c) => c.label)).toEqual(['relay 5/s', 'handrail.example 1000/day']);
  });
  it("through a rep's mailbox: the mailbox's own limits and the domain's, never the relay's", () => {
    const mailbox = { address: 'sam@handrail.example', imap: null, smtp: { host: 'h', port: 587, security: 'starttls' as const, user: 'sam', password: 'env:X', pool: 2, limits: { perMinute: 20, perDay: 500 } } };
    const counters = limitCountersFor({ mailbox }, sending, 'handrail.example', now);
    expect(counters.map((c) => c.label)).toEqual(['handrail.example 1000/day', 'mailbox sam@handrail.example 20/min', 'mailbox sam@handrail.example 500/day']);
    expect(counters[1]!.endsAt).toBe(Date.parse('2026-03-02T10:01:00Z'));
  });
});
