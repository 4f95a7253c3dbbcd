// The reps' own mailboxes against real servers: Dovecot (IMAP, started here on loopback with a throwaway
// configuration) and an SMTP submission server that requires the rep's login. One-to-one mail goes out
// through the rep's SMTP and its copy lands in their Sent folder; replies and out-of-office answers dropped
// into their INBOX (IMAP APPEND, as a delivery would) are read and acted on; a restart or a cut connection
// records each message once; a wrong password is reported and retried; one failing mailbox stops nothing else;
// exactly one watcher per mailbox, taken over when its holder dies.
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normaliseMailbox } from '../../src/config/mailboxes.js';
import { receiveMailboxMessage } from '../../src/usecases/receiveMailboxMessage.js';
import { activity, enrollments, leads, mailboxCopies, mailboxWatch, messages, signals, suppressions } from '../../src/db/schema.js';
import { startMailboxWatchers, type MailboxWatchers } from '../../src/mailbox/watcher.js';
import { mailboxHealth } from '../../src/usecases/mailboxStatus.js';
import { queueHealth } from '../../src/usecases/queueHealth.js';
import { testMailbox } from '../../src/usecases/testMailbox.js';
import { DOVECOT_BINARY, startDovecot, type Dovecot } from '../support/dovecot.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

// The mail fixtures were written in January 2026: run the engine's clock from then.
const started = Date.now();
const clock = () => new Date(Date.UTC(2026, 0, 5, 9, 30) + (Date.now() - started));

const SAM = 'sam@handrail.example';
const ANA = 'ana@handrail.example';
const RAJ = 'raj@handrail.example';
const PASSWORDS: Record<string, string> = { [SAM]: 's4m-s3cret', [ANA]: 'an4-s3cret', [RAJ]: 'r4j-s3cret' };

/** What the submission server took: who logged in, the envelope, and the exact bytes. */
interface Submitted {
  user: string;
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
  messageId: string;
}

let dovecot: Dovecot;
let submission: SMTPServer;
const submitted: Submitted[] = [];
let configDir: string;
let h: Harness;

/** A TCP proxy in front of Dovecot for Sam's watcher: `cut()` drops every connection mid-stream. */
const proxy = {
  server: null as net.Server | null,
  sockets: new Set<net.Socket>(),
  port: 0,
  /** Bytes Dovecot sent to Sam's watcher (and Sent copies) through the proxy. */
  bytesDown: 0,
  /** While set, a connection's EXAMINE/SELECT (and what follows it) waits in `releases` until released. */
  holdOpen: false,
  releases: [] as (() => void)[],
  cut() {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  },
};

const skip = !DOVECOT_BINARY;
if (skip) console.warn('dovecot is not installed (apt-get install dovecot-imapd): the mailbox tests are skipped');

beforeAll(async () => {
  if (skip) return;
  dovecot = await startDovecot(PASSWORDS);
  proxy.server = net.createServer((client) => {
    const upstream = net.connect(dovecot.port, '127.0.0.1');
    proxy.sockets.add(client).add(upstream);
    upstream.on('data', (c: Buffer) => (proxy.bytesDown += c.length));
    let held: Buffer[] | null = null;
    client.on('data', (c: Buffer) => {
      if (!held && proxy.holdOpen && /^\S+ (EXAMINE|SELECT) /m.test(c.toString('latin1'))) {
        held = [];
        proxy.releases.push(() => {
          for (const b of held ?? []) upstream.write(b);
          held = null;
        });
      }
      if (held) held.push(c);
      else upstream.write(c);
    });
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((r) => proxy.server!.listen(0, '127.0.0.1', () => r()));
  proxy.port = (proxy.server!.address() as net.AddressInfo).port;

  submission = new SMTPServer({
    authOptional: false,
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username && PASSWORDS[auth.username] === auth.password) return cb(null, { user: auth.username });
      cb(Object.assign(new Error('5.7.8 Authentication credentials invalid'), { responseCode: 535 }));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        void simpleParser(raw).then((p) => {
          submitted.push({ user: String(session.user), mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', rcptTo: session.envelope.rcptTo.map((r) => r.address), raw, messageId: (p.messageId ?? '').replace(/[<>]/g, '') });
          cb(null, '2.0.0 Ok: queued as SUBMIT');
        }, cb);
      });
    },
  });
  await new Promise<void>((r) => submission.listen(0, '127.0.0.1', () => r()));
  const smtpPort = (submission.server.address() as net.AddressInfo).port;

  configDir = mkdtempSync(join(tmpdir(), 'nurture-mailbox-config-'));
  cpSync('test/fixtures/config/mailbox', configDir, { recursive: true });
  mkdirSync(join(configDir, 'secrets'));
  for (const [who, pw] of Object.entries(PASSWORDS)) writeFileSync(join(configDir, 'secrets', who), `${pw}\n`);
  // Ana's IMAP password is wrong until a test fixes it; Raj's SMTP password is wrong for good.
  writeFileSync(join(configDir, 'secrets', 'ana-imap'), 'not-her-password\n');
  writeFileSync(join(configDir, 'secrets', 'raj-wrong'), 'not-his-password\n');
  const smtp = (user: string, secret: string) => `{ host: 127.0.0.1, port: ${smtpPort}, security: none, user: ${user}, password: "file:secrets/${secret}", limits: { perMinute: 100 } }`;
  writeFileSync(
    join(configDir, 'mailboxes.yaml'),
    `mailboxes:
  ${SAM}:
    smtp: ${smtp(SAM, SAM)}
    imap: { host: 127.0.0.1, port: ${proxy.port}, security: none, poll: 2s }
  ${ANA}:
    smtp: ${smtp(ANA, ANA)}
    imap: { host: 127.0.0.1, port: ${dovecot.port}, security: none, password: "file:secrets/ana-imap", poll: 2s }
  ${RAJ}:
    smtp: ${smtp(RAJ, 'raj-wrong')}
`,
  );
  h = await startHarness({ configDir, now: clock, mailbox: { lockTtlMs: 3_000, backoff: { baseMs: 300, maxMs: 1_500 } } });
}, 60_000);

afterAll(async () => {
  await h?.close();
  await new Promise<void>((r) => (submission ? submission.close(() => r()) : r()));
  proxy.cut();
  await new Promise<void>((r) => (proxy.server ? proxy.server.close(() => r()) : r()));
  await dovecot?.stop();
  if (configDir) rmSync(configDir, { recursive: true, force: true });
});

/** An IMAP session as the rep (or a delivery agent) has it, straight to Dovecot. */
async function asRep<T>(user: string, run: (c: ImapFlow) => Promise<T>): Promise<T> {
  const c = new ImapFlow({ host: '127.0.0.1', port: dovecot.port, secure: false, doSTARTTLS: false, auth: { user, pass: PASSWORDS[user]! }, logger: false });
  c.on('error', () => {});
  await c.connect();
  try {
    return await run(c);
  } finally {
    await c.logout().catch(() => c.close());
  }
}

/** Delivers a mail into the rep's INBOX, as their mail server's delivery agent would. */
const deliver = (user: string, raw: string) => asRep(user, (c) => c.append('INBOX', raw));

/** The CLI, without blocking this process (the servers it talks to live here). */
function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/nurture.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const fixture = (file: string) => readFileSync(`test/fixtures/mail/${file}`, 'utf8');
/** A captured mail made to answer `messageId`, from `from`, with a Message-ID of its own. */
const answering = (file: string, messageId: string, from: string, ownId: string) =>
  fixture(file)
    .replace(/^In-Reply-To: .*$/m, `In-Reply-To: <${messageId}>`)
    .replace(/^References: .*$/m, `References: <${messageId}>`)
    .replace(/^From: .*$/m, `From: ${from}`)
    .replace(/^Message-ID: .*$/im, `Message-ID: <${ownId}>`);

const reply = (from: string, to: string, inReplyTo: string, text: string, messageId: string | null) =>
  [`From: ${from}`, `To: ${to}`, `Subject: Re: your note`, ...(messageId ? [`Message-ID: <${messageId}>`] : []), `In-Reply-To: <${inReplyTo}>`, `Date: ${clock().toUTCString()}`, 'Content-Type: text/plain; charset=utf-8', '', text, ''].join('\r\n');

async function newLead(email: string, owner: string, persona = 'champion') {
  const r = await h.post('/v1/triggers', { type: 'lead.upsert', lead: { email, firstName: email.split('.')[0], persona, owner: { name: owner.split('@')[0], email: owner }, account: { name: `${email.split('@')[1]} inc`, domain: email.split('@')[1] } } });
  expect(r.status).toBeLessThan(300);
  const msg = await eventually(`intro to ${email} sent`, async () => (await h.ctx.db.select().from(messages).where(and(eq(messages.toAddress, email), eq(messages.stepId, 'intro'), eq(messages.status, 'sent'))))[0], 30_000);
  return msg;
}

const repliesOf = async (email: string) => {
  const [lead] = await h.ctx.db.select({ id: leads.id }).from(leads).where(eq(leads.email, email));
  return h.ctx.db.select().from(signals).where(and(eq(signals.leadId, lead!.id), eq(signals.kind, 'reply')));
};

describe.skipIf(skip)("the reps' own mailboxes", () => {
  it('sends a one-to-one step through the rep\'s SMTP with the rep\'s login, and files the very same message in their Sent folder', async () => {
    const msg = await newLead('henrik.larsen@nordhavn-shipping.test', SAM);
    const out = submitted.find((s) => s.messageId === msg.messageId);
    expect(out).toMatchObject({ user: SAM, mailFrom: SAM, rcptTo: ['henrik.larsen@nordhavn-shipping.test'] });
    // Not through the relay.
    expect(h.smtp.mails.filter((m) => m.envelopeTo.includes('henrik.larsen@nordhavn-shipping.test'))).toHaveLength(0);
    expect(out!.raw.toString()).not.toMatch(/^X-SMTPAPI:/im);

    const copy = await eventually('the copy filed', async () => (await h.ctx.db.select().from(mailboxCopies).where(and(eq(mailboxCopies.messageId, msg.id))))[0]?.appendedAt && (await h.ctx.db.select().from(mailboxCopies).where(eq(mailboxCopies.messageId, msg.id)))[0]);
    expect(copy).toMatchObject({ mailbox: SAM, folder: 'Sent', raw: null });
    const filed = await asRep(SAM, async (c) => {
      await c.mailboxOpen('Sent', { readOnly: true });
      return c.fetchAll('1:*', { source: true, flags: true, envelope: true });
    });
    expect(filed).toHaveLength(1);
    expect(filed[0]!.envelope!.messageId).toBe(`<${msg.messageId}>`);
    expect(filed[0]!.flags!.has('\\Seen')).toBe(true);
    // Byte for byte what the submission server took (SMTP ends the data with the final CRLF it added).
    expect(filed[0]!.source!.toString('utf8')).toBe(out!.raw.toString('utf8'));
  });

  it('postpones the sequence when an out-of-office lands in the rep\'s inbox', async () => {
    const msg = await newLead('tove.berg@nordhavn-shipping.test', SAM);
    await deliver(SAM, answering('exchange-oof.eml', msg.messageId, 'Tove Berg <tove.berg@nordhavn-shipping.test>', 'oof-tove@nordhavn-shipping.test'));
    const postponed = await eventually('postponed to the return date', async () => {
      const rows = await h.ctx.db.select().from(activity).where(and(eq(activity.kind, 'wait'), eq(activity.email, 'tove.berg@nordhavn-shipping.test')));
      return rows.find((r) => r.detail.includes('out of office'));
    }, 30_000);
    expect(postponed.detail).toContain('2026-01-12T00:00:00.000Z');
    const [run] = await h.ctx.db.select().from(enrollments).where(eq(enrollments.leadId, msg.leadId));
    expect(run).toMatchObject({ state: 'active' });
    expect(run!.nextDueAt!.toISOString()).toBe('2026-01-12T00:00:00.000Z');
    const [auto] = await h.ctx.db.select().from(signals).where(and(eq(signals.leadId, msg.leadId), eq(signals.kind, 'auto_reply')));
    expect(auto).toMatchObject({ human: false });
  });

  it('stops the sequence and advances the lead within seconds of a reply landing in the rep\'s inbox', async () => {
    const msg = await newLead('henrik.larsen@nordhavn-shipping.test', SAM).catch(async () => (await h.ctx.db.select().from(messages).where(eq(messages.toAddress, 'henrik.larsen@nordhavn-shipping.test')))[0]!);
    const dropped = Date.now();
    await deliver(SAM, answering('gmail-web-reply.eml', msg.messageId, 'Henrik Larsen <henrik.larsen@nordhavn-shipping.test>', 'henrik-reply-1@mail.gmail.com'));
    const ended = await eventually('the sequence stopped', async () => (await h.ctx.db.select().from(enrollments).where(and(eq(enrollments.leadId, msg.leadId), eq(enrollments.sequenceId, 'awareness-notes'), eq(enrollments.state, 'exited'))))[0], 30_000);
    const tookMs = Date.now() - dropped;
    expect(ended.exitReason).toBe('replied');
    const [lead] = await h.ctx.db.select().from(leads).where(eq(leads.id, msg.leadId));
    expect(lead!.stage).toBe('interest');
    // IDLE announces the mail at once: seconds, not a poll period or more (generous for a busy machine).
    expect(tookMs).toBeLessThan(15_000);
    const [r] = await repliesOf('henrik.larsen@nordhavn-shipping.test');
    expect(r).toMatchObject({ human: true });
    expect(String(r!.evidence.newText)).toContain('Thursday afternoon works');
    // Nurture only read: the rep's mail is still there, unread.
    const flags = await asRep(SAM, async (c) => {
      await c.mailboxOpen('INBOX', { readOnly: true });
      return (await c.fetchAll('1:*', { flags: true })).map((m) => [...(m.flags ?? [])]);
    });
    expect(flags.length).toBeGreaterThanOrEqual(2);
    for (const f of flags) expect(f).not.toContain('\\Seen');
  });

  it('records each message exactly once across a watcher restart and a connection cut mid-stream', async () => {
    const email = 'ines.moreau@quai-logistique.test';
    const msg = await newLead(email, SAM);
    // Stopped: mail arrives while no one watches, one of it without a Message-ID.
    await h.workers.mailboxes.close();
    await deliver(SAM, reply(email, SAM, msg.messageId, 'first, while you were away', 'ines-1@quai-logistique.test'));
    await deliver(SAM, reply(email, SAM, msg.messageId, 'second, without a Message-ID', null));
    let watchers: MailboxWatchers = startMailboxWatchers(h.ctx, { lockTtlMs: 3_000, backoff: { baseMs: 300, maxMs: 1_500 } });
    try {
      await eventually('both read after the restart', async () => (await repliesOf(email)).length >= 2, 30_000);

      // A burst, and the connection cut while the watcher works through it.
      const burst = Array.from({ length: 8 }, (_, i) => reply(email, SAM, msg.messageId, `burst ${i}`, i === 3 ? null : `ines-burst-${i}@quai-logistique.test`));
      await asRep(SAM, async (c) => {
        for (const raw of burst) await c.append('INBOX', raw);
      });
      await eventually('the watcher is into the burst', async () => (await repliesOf(email)).length >= 3, 30_000);
      proxy.cut();
      await eventually('all ten read', async () => (await repliesOf(email)).length >= 10, 30_000);
      const cutLogged = await eventually('the cut reported', async () => (await h.ctx.db.select().from(activity).where(and(eq(activity.kind, 'mailbox'), eq(activity.email, SAM)))).find((a) => /closed the connection|connection was lost/.test(a.detail)), 30_000);
      expect(cutLogged.detail).toContain(SAM);

      // And once more from a cold start: the checkpoint holds, nothing is read twice.
      await watchers.close();
      const before = (await h.ctx.db.select().from(mailboxWatch).where(eq(mailboxWatch.address, SAM)))[0]!;
      watchers = startMailboxWatchers(h.ctx, { lockTtlMs: 3_000, backoff: { baseMs: 300, maxMs: 1_500 } });
      await eventually('watching again', async () => {
        const [row] = await h.ctx.db.select().from(mailboxWatch).where(eq(mailboxWatch.address, SAM));
        return row?.state === 'watching' && row.connectedAt! > before.connectedAt! && row;
      }, 30_000);
      // A new message after the restart is read, and only it: then everything before it was passed over.
      await deliver(SAM, reply(email, SAM, msg.messageId, 'last one', 'ines-last@quai-logistique.test'));
      await eventually('the last one read', async () => (await repliesOf(email)).length >= 11, 30_000);
      const all = await repliesOf(email);
      expect(all).toHaveLength(11);
      expect(new Set(all.map((s) => s.sourceId)).size).toBe(11);
    } finally {
      await watchers.close();
      h.workers.mailboxes = startMailboxWatchers(h.ctx, { lockTtlMs: 3_000, backoff: { baseMs: 300, maxMs: 1_500 } });
    }
  });

  it('reports a wrong password clearly, retries it without flooding the log, and reads the inbox once it is fixed', async () => {
    const failing = await eventually('Ana\'s mailbox retrying', async () => {
      const [row] = await h.ctx.db.select().from(mailboxWatch).where(eq(mailboxWatch.address, ANA));
      return row?.state === 'retrying' && row.failures >= 3 && row;
    }, 30_000);
    expect(failing.lastError).toContain(`IMAP 127.0.0.1:${dovecot.port} refused the login of ${ANA}`);
    expect(failing.lastError).toMatch(/authentication failed/i);
    expect(failing.nextRetryAt).not.toBeNull();
    // One line in the log for the whole retry storm.
    const logged = (await h.ctx.db.select().from(activity).where(and(eq(activity.kind, 'mailbox'), eq(activity.email, ANA)))).filter((a) => a.detail.includes('refused the login'));
    expect(logged).toHaveLength(1);
    expect(logged[0]!.detail).toMatch(/retrying in/);
    // The console's queues view and its API say the same.
    const health = await queueHealth(h.ctx);
    expect(health.mailboxes.find((m) => m.address === ANA)).toMatchObject({ state: 'retrying', reads: true, sends: true });
    const page = await (await fetch(`${h.http.url}/queues`)).text();
    expect(page).toContain('Mailboxes');
    expect(page).toContain(ANA);
    expect(page).toContain('refused the login');

    // Her sending is unaffected meanwhile: her lead's mail goes out through her SMTP.
    const msg = await newLead('jonas.weber@bergbahn.test', ANA);
    expect(submitted.find((s) => s.messageId === msg.messageId)).toMatchObject({ user: ANA });

    writeFileSync(join(configDir, 'secrets', 'ana-imap'), `${PASSWORDS[ANA]}\n`);
    await eventually('Ana\'s mailbox watched', async () => (await mailboxHealth(h.ctx)).find((m) => m.address === ANA && m.state === 'watching'), 30_000);
    const back = (await h.ctx.db.select().from(activity).where(and(eq(activity.kind, 'mailbox'), eq(activity.email, ANA)))).find((a) => /watching INBOX again, after \d+ failed attempts/.test(a.detail));
    expect(back).toBeDefined();
    await deliver(ANA, reply('jonas.weber@bergbahn.test', ANA, msg.messageId, 'Gerne, nächste Woche?', 'jonas-1@bergbahn.test'));
    await eventually('Jonas\'s reply read', async () => (await repliesOf('jonas.weber@bergbahn.test')).length === 1, 30_000);
  });

  it('keeps sending when one rep\'s mailbox refuses its login: that message waits and retries, nothing bounces, the others go', async () => {
    await h.post('/v1/triggers', { type: 'lead.upsert', lead: { email: 'mia.koch@werft.test', firstName: 'Mia', persona: 'champion', owner: { name: 'Raj', email: RAJ }, account: { name: 'Werft', domain: 'werft.test' } } });
    const retry = await eventually('Raj\'s send retried', async () => (await h.ctx.db.select().from(activity).where(and(eq(activity.kind, 'retry'), eq(activity.email, 'mia.koch@werft.test'))))[0], 30_000);
    expect(retry.detail).toContain(`refused the login of ${RAJ}`);
    const [m] = await h.ctx.db.select().from(messages).where(eq(messages.toAddress, 'mia.koch@werft.test'));
    expect(['queued', 'sending']).toContain(m!.status);
    expect(await h.ctx.db.select().from(suppressions).where(eq(suppressions.email, 'mia.koch@werft.test'))).toHaveLength(0);
    expect(await h.ctx.db.select().from(signals).where(and(eq(signals.leadId, m!.leadId), eq(signals.kind, 'bounce')))).toHaveLength(0);

    // Meanwhile a rep without a mailbox, and Sam, still send (through the relay and Sam's SMTP).
    const lee = await newLead('olaf.ruud@fjord.test', 'lee@handrail.example');
    expect(h.smtp.mails.find((c) => c.parsed.messageId === `<${lee.messageId}>`)).toBeDefined();
    expect(submitted.find((s) => s.messageId === lee.messageId)).toBeUndefined();
    const sam = await newLead('pia.lund@fjord.test', SAM);
    expect(submitted.find((s) => s.messageId === sam.messageId)).toMatchObject({ user: SAM });
  });

  it('sends segmented mail through the relay, even to a lead whose rep has a mailbox', async () => {
    const r = await h.post('/v1/triggers', { type: 'lead.upsert', lead: { email: 'cfo@nordhavn-shipping.test', firstName: 'Karin', persona: 'economic_buyer', owner: { name: 'Sam', email: SAM }, account: { name: 'Nordhavn Shipping', domain: 'nordhavn-shipping.test', tier: 'enterprise' } } });
    expect(r.status).toBeLessThan(300);
    const { enrollExisting } = await import('../../src/usecases/enrollLead.js');
    await enrollExisting(h.ctx, 'awareness-newsletter', 'cfo@nordhavn-shipping.test');
    const sent = await eventually('the newsletter sent', async () => (await h.ctx.db.select().from(messages).where(and(eq(messages.toAddress, 'cfo@nordhavn-shipping.test'), eq(messages.status, 'sent'))))[0], 30_000);
    expect(h.smtp.mails.find((c) => c.parsed.messageId === `<${sent.messageId}>`)).toBeDefined();
    expect(submitted.find((s) => s.messageId === sent.messageId)).toBeUndefined();
  });

  it('keeps exactly one watcher per mailbox across processes, and another takes over when its holder dies', async () => {
    await h.workers.mailboxes.close();
    const opts = { lockTtlMs: 2_000, backoff: { baseMs: 300, maxMs: 1_500 } };
    const a = startMailboxWatchers(h.ctx, { ...opts, holderId: 'process-a' });
    const b = startMailboxWatchers(h.ctx, { ...opts, holderId: 'process-b' });
    try {
      const holder = await eventually('one holder for Sam', async () => {
        const [row] = await h.ctx.db.select().from(mailboxWatch).where(eq(mailboxWatch.address, SAM));
        return row?.state === 'watching' && row.holder;
      }, 30_000);
      const [held, other] = holder === 'process-a' ? [a, b] : [b, a];
      // Through several renewals, never both.
      for (let i = 0; i < 10; i++) {
        expect(held.watching()).toContain(SAM);
        expect(other.watching()).not.toContain(SAM);
        await new Promise((r) => setTimeout(r, 300));
      }
      await held.kill();
      const died = Date.now();
      await eventually('taken over', async () => {
        const [row] = await h.ctx.db.select().from(mailboxWatch).where(eq(mailboxWatch.address, SAM));
        return other.watching().includes(SAM) && row?.holder === other.holderId && row.state === 'watching';
      }, 30_000);
      // No sooner than the dead holder's lock could expire, and not much later.
      expect(Date.now() - died).toBeLessThan(15_000);
      const msg = await newLead('lars.eide@fjord.test', SAM);
      await deliver(SAM, reply('lars.eide@fjord.test', SAM, msg.messageId, 'Sounds good', 'lars-1@fjord.test'));
      await eventually('read by the new holder', async () => (await repliesOf('lars.eide@fjord.test')).length === 1, 30_000);
    } finally {
      await a.close();
      await b.close();
      h.workers.mailboxes = startMailboxWatchers(h.ctx, opts);
    }
  });

  it('records a reply with a NUL in its text (a quoted-printable =00) without the NUL, and goes on reading the mail after it', async () => {
    const email = 'nils.poison@fjord.test';
    const msg = await newLead(email, SAM);
    // Quoted-printable =00 decodes to a NUL, which Postgres refuses in text and jsonb: the reader drops it
    // (a message that still cannot be recorded is passed over and reported; see the unit tests).
    const poison = reply(email, SAM, msg.messageId, 'looks fine=00 but is not', 'nils-poison@fjord.test').replace('Content-Type: text/plain; charset=utf-8', 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable');
    await deliver(SAM, poison);
    await deliver(SAM, reply(email, SAM, msg.messageId, 'the real answer', 'nils-real@fjord.test'));
    const read = await eventually('the message after it read', async () => (await repliesOf(email)).find((s) => s.sourceId === 'inbound-nils-real@fjord.test'), 30_000);
    expect(String(read.evidence.newText)).toContain('the real answer');
    const first = (await repliesOf(email)).find((s) => s.sourceId === 'inbound-nils-poison@fjord.test');
    expect(String(first?.evidence.newText)).toContain('looks fine but is not');
  });

  it('does not take an old mail from the lead, read late, as a reply to a message sent after it arrived', async () => {
    const email = 'olga.early@fjord.test';
    const msg = await newLead(email, SAM);
    const threeDaysBefore = new Date(msg.sentAt!.getTime() - 3 * 86_400_000);
    // Written to the rep days before nurture's note went out (no threading headers; the rep's provider vouched for the sender).
    const early = [`From: ${email}`, `To: ${SAM}`, 'Subject: the invoice', 'Message-ID: <olga-early@fjord.test>', `Date: ${threeDaysBefore.toUTCString()}`, 'Authentication-Results: mx.handrail.example; dkim=pass; spf=pass; dmarc=pass', 'Content-Type: text/plain; charset=utf-8', '', 'Could you resend the invoice?', ''].join('\r\n');
    await asRep(SAM, (c) => c.append('INBOX', early, [], threeDaysBefore));
    await deliver(SAM, reply(email, SAM, msg.messageId, 'and yes to the call', 'olga-reply@fjord.test'));
    await eventually('her reply read', async () => (await repliesOf(email)).find((s) => s.sourceId === 'inbound-olga-reply@fjord.test'), 30_000);
    expect((await repliesOf(email)).map((s) => s.sourceId)).toEqual(['inbound-olga-reply@fjord.test']);
  });

  it('reads no more than the head of a huge message: a reply with a large attachment is recorded without downloading it all', async () => {
    const email = 'per.attach@fjord.test';
    const msg = await newLead(email, SAM);
    const attachment = Buffer.alloc(6 * 1024 * 1024, 7).toString('base64').replace(/.{76}/g, '$&\r\n');
    const big = [`From: ${email}`, `To: ${SAM}`, 'Subject: Re: your note', 'Message-ID: <per-big@fjord.test>', `In-Reply-To: <${msg.messageId}>`, `Date: ${clock().toUTCString()}`, 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b1"', '', '--b1', 'Content-Type: text/plain; charset=utf-8', '', 'The deck is attached.', '--b1', 'Content-Type: application/octet-stream; name="deck.bin"', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="deck.bin"', '', attachment, '--b1--', ''].join('\r\n');
    const before = proxy.bytesDown;
    await deliver(SAM, big);
    const read = await eventually('the reply read', async () => (await repliesOf(email)).find((s) => s.sourceId === 'inbound-per-big@fjord.test'), 30_000);
    expect(String(read.evidence.newText)).toContain('The deck is attached.');
    expect(big.length).toBeGreaterThan(8 * 1024 * 1024);
    expect(proxy.bytesDown - before).toBeLessThan(4 * 1024 * 1024);
  });

  it('records a message without a Message-ID once, even when the server renumbers the folder (a new UIDVALIDITY)', async () => {
    const email = 'rut.nomsgid@fjord.test';
    const msg = await newLead(email, SAM);
    const raw = Buffer.from(reply(email, SAM, msg.messageId, 'no id on this one', null));
    await receiveMailboxMessage(h.ctx, { mailbox: 'nobody@handrail.example', uidValidity: 1n, uid: 7, raw, arrivedAt: null });
    await receiveMailboxMessage(h.ctx, { mailbox: 'nobody@handrail.example', uidValidity: 2n, uid: 3, raw, arrivedAt: null });
    expect(await repliesOf(email)).toHaveLength(1);
  });

  it('stops at once when closed while it is still opening the inbox, and gives its lock back', async () => {
    await h.workers.mailboxes.close();
    const opts = { lockTtlMs: 3_000, backoff: { baseMs: 300, maxMs: 1_500 } };
    proxy.holdOpen = true;
    const w = startMailboxWatchers(h.ctx, { ...opts, holderId: 'process-slow' });
    try {
      await eventually('Sam\'s watcher opening the inbox', async () => proxy.releases.length > 0, 30_000);
      const closing = w.close().then(() => 'closed');
      proxy.holdOpen = false;
      for (const release of proxy.releases.splice(0)) release();
      // A deadline, not a pause: the close resolves as soon as it is done.
      const deadline = new Promise((r) => setTimeout(() => r('still open'), 10_000).unref());
      expect(await Promise.race([closing, deadline])).toBe('closed');
      const [row] = await h.ctx.db.select().from(mailboxWatch).where(eq(mailboxWatch.address, SAM));
      expect(row).toMatchObject({ state: 'stopped', holder: 'process-slow' });
    } finally {
      proxy.holdOpen = false;
      for (const release of proxy.releases.splice(0)) release();
      h.workers.mailboxes = startMailboxWatchers(h.ctx, opts);
    }
  });

  it('`nurture mailbox test` says which step failed: password, DNS, connection, TLS, login or folder', async () => {
    const ok = await testMailbox(h.ctx.config, SAM);
    expect(ok.ok).toBe(true);
    expect(ok.checks.map((c) => `${c.side} ${c.step}`)).toEqual(['smtp password', 'smtp connect', 'smtp login', 'imap password', 'imap connect', 'imap login', 'imap folder', 'imap folder']);

    const raj = await testMailbox(h.ctx.config, RAJ);
    expect(raj.checks.find((c) => !c.ok)).toMatchObject({ side: 'smtp', step: 'login' });

    const variant = (imap: Record<string, unknown>) => ({
      dir: configDir,
      mailboxes: new Map([[SAM, normaliseMailbox(SAM, { imap: { host: '127.0.0.1', port: dovecot.port, security: 'none', user: SAM, password: `file:secrets/${SAM}`, folders: { inbox: 'INBOX', sent: 'auto' }, copyToSent: true, poll: '60s', markSeen: false, ...imap } as never })]]),
    });
    const failedStep = async (imap: Record<string, unknown>) => (await testMailbox(variant(imap), SAM, { timeoutMs: 5_000 })).checks.find((c) => !c.ok);
    expect(await failedStep({ password: 'env:NURTURE_TEST_UNSET_PASSWORD' })).toMatchObject({ step: 'password', detail: expect.stringContaining('NURTURE_TEST_UNSET_PASSWORD is not set') });
    expect(await failedStep({ host: 'imap.nurture-test.invalid' })).toMatchObject({ step: 'dns', detail: expect.stringContaining('does not resolve') });
    expect(await failedStep({ security: 'tls' })).toMatchObject({ step: 'tls' });
    expect(await failedStep({ password: `file:secrets/raj-wrong` })).toMatchObject({ step: 'login', detail: expect.stringContaining(`refused the login of ${SAM}`) });
    expect(await failedStep({ folders: { inbox: 'INBOX', sent: 'Outbox' } })).toMatchObject({ step: 'folder', detail: expect.stringContaining('"Outbox" does not exist') });
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const deadPort = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    expect(await failedStep({ port: deadPort })).toMatchObject({ step: 'connect', detail: expect.stringContaining('ECONNREFUSED') });

    // The command itself.
    const cli = await run(['mailbox', 'test', SAM, '--config', configDir]);
    expect(cli.stdout).toContain('all checks passed');
    expect(cli.status).toBe(0);
    const bad = await run(['mailbox', 'test', RAJ, '--config', configDir]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/smtp\s+FAILED login/);
  });
});
