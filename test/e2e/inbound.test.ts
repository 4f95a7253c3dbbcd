// Inbound mail as the real world sends it, through POST /v1/inbound and into Postgres: a reply whose client
// dropped every threading header, bounces that arrive at the per-message envelope sender (VERP) or only in
// plain text, a feedback-loop complaint, and an out-of-office that states when the person is back.
import { readFileSync } from 'node:fs';
import { and, eq } from 'drizzle-orm';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activity, enrollments, leads, messages, signals, suppressions } from '../../src/db/schema.js';
import { bounceAddress } from '../../src/mail/tracking.js';
import { createTransport } from '../../src/mail/transport.js';
import { receiveInbound } from '../../src/usecases/receiveInbound.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

// The fixtures were written in January 2026: run the clock from then.
const started = Date.now();
const clock = () => new Date(Date.UTC(2026, 0, 5, 9, 30) + (Date.now() - started));
let h: Harness;
/** What reached SMTP, envelope sender included (the harness's own sink does not keep MAIL FROM). */
const sent: { mailFrom: string; rcptTo: string[]; from: string; replyTo: string | null }[] = [];
let relay: SMTPServer;
beforeAll(async () => {
  relay = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    onData(stream, session, cb) {
      simpleParser(stream).then((parsed) => {
        sent.push({
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          from: parsed.from?.value[0]?.address ?? '',
          replyTo: parsed.replyTo?.value[0]?.address ?? null,
        });
        cb();
      }, cb);
    },
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', () => resolve()));
  h = await startHarness({ configDir: 'test/fixtures/config/e2e', now: clock });
  const original = h.ctx.transport;
  h.ctx.transport = createTransport(`smtp://127.0.0.1:${(relay.server.address() as { port: number }).port}?tls=off`);
  original?.close();
});
afterAll(async () => {
  await h?.close();
  await new Promise<void>((resolve) => (relay ? relay.close(() => resolve()) : resolve()));
});

const fixture = (file: string) => readFileSync(`test/fixtures/mail/${file}`, 'utf8');

/** A lead in the one-to-one sequence, and the intro the rep's address sent them. */
async function leadWithIntro(email: string, firstName: string) {
  await h.post('/v1/triggers', {
    type: 'lead.upsert',
    lead: { email, firstName, persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: `${firstName}'s company`, domain: email.split('@')[1] } },
  });
  await eventually(`intro to ${email}`, async () => sent.find((m) => m.rcptTo.includes(email)));
  const msg = await eventually(`sent row for ${email}`, async () => (await h.ctx.db.select().from(messages).where(and(eq(messages.toAddress, email), eq(messages.stepId, 'intro'))))[0]);
  return msg;
}

async function signalOf(messageRowId: string, kind: string) {
  return eventually(`${kind} signal`, async () => (await h.ctx.db.select().from(signals).where(and(eq(signals.messageId, messageRowId), eq(signals.kind, kind))))[0]);
}

describe('inbound mail, matched and read right', () => {
  it('matches a reply with no In-Reply-To or References to the sender\'s latest message', async () => {
    const email = 'w.hoekstra@hoekstra-bouw.test';
    const intro = await leadWithIntro(email, 'Willem');
    const raw = fixture('outlook-ios-reply-no-threading.eml');
    expect(raw).not.toMatch(/^(In-Reply-To|References):/im);

    // Her latest message when the reply comes: the intro, or, on a busy machine, the follow-up due two
    // seconds after it, which may also go out while the reply is read.
    const latest = await eventually(`a sent row to ${email}`, () => latestTo(email));
    const r = await h.post('/v1/inbound', null, { raw });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ matched: true, kind: 'reply', match: 'sender_recent', recorded: true });
    const matched = await matchedRow(r.json.messageId, email, latest);
    const reply = await signalOf(matched.id, 'reply');
    expect(reply).toMatchObject({ human: true });
    expect(reply.evidence).toMatchObject({ match: 'sender_recent', sender: 'lead' });
    expect(String(reply.evidence.newText)).toContain('pricing for 25 foremen');
    expect(String(reply.evidence.newText)).not.toContain('Get Outlook');
    const [run] = await h.ctx.db.select().from(enrollments).where(eq(enrollments.leadId, intro.leadId));
    expect(run).toMatchObject({ state: 'exited', exitReason: 'replied' });
  });

  it('counts a reply without a Message-ID once when it comes both through /v1/inbound and from the rep\'s inbox, Gmail\'s added id or not', async () => {
    const email = 'ines.moreau@moreau-freight.test';
    const intro = await leadWithIntro(email, 'Ines');
    const reply = (extra: string[]) =>
      [...extra, `From: Ines Moreau <${email}>`, 'To: Sam Rivera <sam@handrail.example>', 'Subject: Re: a note', `In-Reply-To: <${intro.messageId}>`, 'Date: Fri, 4 Dec 2026 09:12:40 +0100', 'Content-Type: text/plain; charset=utf-8', '', 'Thanks, that checklist is what we needed.', ''].join('\r\n');
    // Forwarded by the provider to /v1/inbound with its own trace headers…
    const posted = await h.post('/v1/inbound', null, { raw: reply(['Received: from mx1.provider.test by in.provider.test; Fri, 4 Dec 2026 08:12:45 +0000', 'Delivered-To: inbound@parse.handrail.example']) });
    expect(posted.json).toMatchObject({ matched: true, kind: 'reply', recorded: true });
    // …and read from the rep's inbox, where other servers added theirs (the mailbox path names mail by where it was read).
    const read = await receiveInbound(h.ctx, reply(['Return-Path: <' + email + '>', 'Received: from mail.moreau-freight.test by imap.handrail.example; Fri, 4 Dec 2026 08:12:44 +0000']), { sourceId: 'imap-0123456789abcdef' });
    expect(read).toMatchObject({ matched: true, kind: 'reply' });
    // …and once more from a Gmail inbox, where Gmail gave it an id of its own.
    const viaGmail = await receiveInbound(h.ctx, reply(['Message-ID: <6571a2b4.050a0220.3c1f2.9d1eSMTPIN_ADDED_MISSING@mx.google.com>', 'Received: by mx.google.com with SMTP id 9d1e; Fri, 04 Dec 2026 00:12:44 -0800 (PST)']), { sourceId: 'imap-fedcba9876543210' });
    expect(viaGmail).toMatchObject({ matched: true, kind: 'reply' });
    const replies = await h.ctx.db.select().from(signals).where(and(eq(signals.leadId, intro.leadId), eq(signals.kind, 'reply')));
    expect(replies).toHaveLength(1);
  });

  it('does not match by sender when our server recorded no authentication for it (a forged From)', async () => {
    const raw = fixture('outlook-ios-reply-no-threading.eml')
      .replace(/^Authentication-Results: .*\r?\n/m, '')
      .replace(/^Message-ID: .*$/m, 'Message-ID: <forged-0@elsewhere.test>');
    expect(raw).not.toMatch(/^Authentication-Results:/im);
    const r = await h.post('/v1/inbound', null, { raw });
    expect(r.json).toMatchObject({ matched: false, kind: 'reply' });
    expect(r.json.reason).toContain('failed authentication');
  });

  it('does not match by sender when our server says the sender failed DMARC', async () => {
    const raw = fixture('outlook-ios-reply-no-threading.eml')
      .replace(/^Authentication-Results: .*$/m, 'Authentication-Results: mx.handrail.example; dkim=none; spf=fail smtp.mailfrom=hoekstra-bouw.test; dmarc=fail header.from=hoekstra-bouw.test')
      .replace(/^Message-ID: .*$/m, 'Message-ID: <forged-1@elsewhere.test>');
    const r = await h.post('/v1/inbound', null, { raw });
    expect(r.json).toMatchObject({ matched: false, kind: 'reply' });
    expect(r.json.reason).toContain('failed authentication');
  });

  it('matches a bounce at the VERP address by its token, and suppresses the unknown user', async () => {
    const email = 'p.lindqvist@oakridge-dental.test';
    const intro = await leadWithIntro(email, 'Per');
    const verp = bounceAddress(h.ctx.settings.trackingSecret, intro.id, 'handrail.example');
    // The notice quotes nothing we can use: no Message-ID of ours, only our signed envelope sender.
    const raw = fixture('qmail-failure-notice.eml')
      .replaceAll(/bounce\+[0-9a-f]{48}@handrail\.example/g, verp)
      .replace(/^Message-ID: <msg-0101-qmail@nurture\.test>$/m, 'Message-ID: <rewritten-by-a-gateway@oakridge-hosting.test>');

    // It went out with that envelope sender, while From stays the rep and no Reply-To hides them.
    expect(sent.find((m) => m.rcptTo.includes(email))).toEqual({ mailFrom: verp, rcptTo: [email], from: 'sam@handrail.example', replyTo: null });

    const r = await h.post('/v1/inbound', null, { raw });
    expect(r.json).toMatchObject({ matched: true, kind: 'bounce', match: 'verp', messageId: intro.messageId, recorded: true });
    const bounce = await signalOf(intro.id, 'bounce');
    expect(bounce).toMatchObject({ reason: 'hard_bounce', human: false });
    expect(bounce.evidence).toMatchObject({ match: 'verp', status: '5.1.1', format: 'text' });
    const [suppressed] = await h.ctx.db.select().from(suppressions).where(eq(suppressions.email, email));
    expect(suppressed).toMatchObject({ reason: 'hard_bounce' });
    const [lead] = await h.ctx.db.select().from(leads).where(eq(leads.email, email));
    expect(lead!.status).toBe('bounced');
    const [row] = await h.ctx.db.select().from(messages).where(eq(messages.id, intro.id));
    expect(row!.status).toBe('bounced');
  });

  it('matches a plain-text bounce by the Message-ID it quotes, and by its recipient when it quotes none', async () => {
    const rosa = await leadWithIntro('rosa.pellegrini@yahoo.com', 'Rosa');
    const quoted = fixture('yahoo-failure-notice.eml').replace('msg-0103-yahoo@nurture.test', rosa.messageId);
    const r1 = await h.post('/v1/inbound', null, { raw: quoted });
    expect(r1.json).toMatchObject({ matched: true, kind: 'bounce', match: 'returned_headers', messageId: rosa.messageId, recorded: true });
    expect((await signalOf(rosa.id, 'bounce')).reason).toBe('hard_bounce');

    const accounts = await leadWithIntro('accounts@grainger-print.test', 'Accounts');
    const unquoted = fixture('exim-plaintext-bounce.eml').replace(/^Message-ID:\n <msg-0102-exim@nurture\.test>\n/m, '');
    expect(unquoted).not.toContain('msg-0102-exim');
    const latest = await eventually('a sent row to accounts@', () => latestTo('accounts@grainger-print.test'));
    const r2 = await h.post('/v1/inbound', null, { raw: unquoted });
    // Found by its recipient alone, it is shown but proves nothing (anyone can write such a notice naming a
    // lead): nobody is suppressed. Bounces that come to the VERP address, or quote our Message-ID, are acted on.
    expect(r2.json).toMatchObject({ matched: true, kind: 'bounce', match: 'dsn_recipient', recorded: false });
    await matchedRow(r2.json.messageId, 'accounts@grainger-print.test', latest);
    expect(await h.ctx.db.select().from(suppressions).where(eq(suppressions.email, 'accounts@grainger-print.test'))).toEqual([]);
    const [lead] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'accounts@grainger-print.test'));
    expect(lead!.status).toBe('active');
    const shown = () => h.ctx.db.select().from(activity).where(and(eq(activity.leadId, lead!.id), eq(activity.kind, 'unverified')));
    expect(await shown()).toHaveLength(1);
    // The same notice again (a provider's retry, or read from the rep's mailbox too) shows once.
    expect((await h.post('/v1/inbound', null, { raw: unquoted })).json).toMatchObject({ matched: true, match: 'dsn_recipient', recorded: false });
    expect(await shown()).toHaveLength(1);
    expect(accounts.toAddress).toBe('accounts@grainger-print.test');
  });

  it('shows a delay warning once, however often it arrives, and changes nothing', async () => {
    const ops = await leadWithIntro('ops@harbor-freight-lines.test', 'Ops');
    const raw = fixture('postfix-delayed-441.eml').replace('msg-0019-delayed@nurture.test', ops.messageId);
    for (let i = 0; i < 2; i++) {
      expect((await h.post('/v1/inbound', null, { raw })).json).toMatchObject({ matched: true, kind: 'delayed', messageId: ops.messageId, recorded: false });
    }
    const [lead] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'ops@harbor-freight-lines.test'));
    const lines = await h.ctx.db.select().from(activity).where(and(eq(activity.leadId, lead!.id), eq(activity.kind, 'delayed')));
    expect(lines).toHaveLength(1);
    expect(lines[0]!.detail).toMatch(/^delivery delayed \(4\.4\.1\)/);
    expect(lead!.status).toBe('active');
    expect(await h.ctx.db.select().from(suppressions).where(eq(suppressions.email, 'ops@harbor-freight-lines.test'))).toEqual([]);
  });

  it('refuses a bounce that names another recipient than the message went to', async () => {
    const intro = await leadWithIntro('n.achterberg@westbrook-clinics.test', 'Nienke');
    const raw = fixture('o365-ndr-flattened-text.eml')
      .replace('msg-0106-o365-text@nurture.test', intro.messageId)
      .replaceAll('n.achterberg@westbrook-clinics.test', 'someone.else@westbrook-clinics.test');
    const r = await h.post('/v1/inbound', null, { raw });
    expect(r.json).toMatchObject({ matched: false, kind: 'bounce' });
    expect(await h.ctx.db.select().from(suppressions).where(eq(suppressions.email, 'n.achterberg@westbrook-clinics.test'))).toHaveLength(0);
  });

  it('records an ARF complaint and suppresses the address', async () => {
    const intro = await leadWithIntro('bill.okafor@aol.com', 'Bill');
    const raw = fixture('aol-arf-headers-only.eml').replace('msg-0115-aol-arf@nurture.test', intro.messageId);
    const r = await h.post('/v1/inbound', null, { raw });
    expect(r.json).toMatchObject({ matched: true, kind: 'complaint', match: 'returned_headers', recorded: true });
    const complaint = await signalOf(intro.id, 'complaint');
    expect(complaint).toMatchObject({ reason: 'arf_abuse' });
    expect(complaint.evidence).toMatchObject({ feedbackType: 'abuse', userAgent: 'AOL SComp' });
    const [suppressed] = await h.ctx.db.select().from(suppressions).where(eq(suppressions.email, 'bill.okafor@aol.com'));
    expect(suppressed).toMatchObject({ reason: 'complaint' });
    const [lead] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'bill.okafor@aol.com'));
    expect(lead!.status).toBe('complained');
  });

  it('matches a redacted complaint by the VERP Return-Path of the message it quotes', async () => {
    const intro = await leadWithIntro('jmrp.reader@hotmail.test', 'Reader');
    const verp = bounceAddress(h.ctx.settings.trackingSecret, intro.id, 'handrail.example');
    const raw = fixture('microsoft-jmrp-arf.eml').replaceAll(/bounce\+[0-9a-f]{48}@handrail\.example/g, verp);
    const r = await h.post('/v1/inbound', null, { raw });
    expect(r.json).toMatchObject({ matched: true, kind: 'complaint', match: 'verp', messageId: intro.messageId });
    expect((await h.ctx.db.select().from(suppressions).where(eq(suppressions.email, 'jmrp.reader@hotmail.test')))[0]).toMatchObject({ reason: 'complaint' });
  });

  it('postpones the sequence to the stated return date of an out-of-office, not the end of the absence', async () => {
    const intro = await leadWithIntro('s.kelly@corrib-logistics.test', 'Siobhan');
    const raw = fixture('outlook-oof-range-and-return.eml').replaceAll('msg-0122-oof-range@nurture.test', intro.messageId);
    const r = await h.post('/v1/inbound', null, { raw });
    expect(r.json).toMatchObject({ matched: true, kind: 'auto_reply', match: 'in_reply_to', recorded: true });
    const auto = await signalOf(intro.id, 'auto_reply');
    expect(auto.evidence.returnDate).toBe('2026-01-19T00:00:00.000Z');
    const run = await eventually('postponed enrollment', async () => {
      const [e] = await h.ctx.db.select().from(enrollments).where(eq(enrollments.leadId, intro.leadId));
      return e?.nextDueAt?.toISOString() === '2026-01-19T00:00:00.000Z' ? e : null;
    });
    expect(run.state).toBe('active');
  });

  it('ignores success notices: a delivered DSN is neither a bounce nor a reply', async () => {
    const intro = await leadWithIntro('m.ferreira@azulejo-studio.test', 'Marta');
    const raw = fixture('postfix-success-delivered.eml').replace('msg-0110-delivered@nurture.test', intro.messageId);
    const r = await h.post('/v1/inbound', null, { raw });
    expect(r.json).toMatchObject({ matched: true, kind: 'notice', recorded: false });
    expect(await h.ctx.db.select().from(signals).where(eq(signals.messageId, intro.id))).toHaveLength(0);
    const [lead] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'm.ferreira@azulejo-studio.test'));
    expect(lead!.status).toBe('active');
  });

  describe('only the lead moves the lead', () => {
    /** A plain reply to `intro`, written by `from`, with the real threading headers. */
    const replyFrom = (from: string, intro: { messageId: string }, id: string) =>
      [
        `From: ${from}`,
        'To: Sam Rivera <sam@handrail.example>',
        'Subject: Re: a quick question',
        // The Date header has whole seconds: one ahead, so the reply is never dated before the lead's stage began.
        `Date: ${new Date(clock().getTime() + 1000).toUTCString()}`,
        `Message-ID: <${id}@mail.test>`,
        `In-Reply-To: <${intro.messageId}>`,
        `References: <${intro.messageId}>`,
        'Content-Type: text/plain; charset=utf-8',
        '',
        'Thanks Sam, this is useful. Can we talk next week?',
        '',
      ].join('\r\n');
    const leadRow = async (email: string) => (await h.ctx.db.select().from(leads).where(eq(leads.email, email)))[0]!;
    const runOf = async (email: string) => (await h.ctx.db.select().from(enrollments).where(eq(enrollments.leadId, (await leadRow(email)).id)))[0]!;

    it("records a stranger's reply to the lead's mail and moves no one", async () => {
      const intro = await leadWithIntro('m.okafor@larch-logistics.test', 'Mara');
      const r = await h.post('/v1/inbound', null, { raw: replyFrom('someone@elsewhere.test', intro, 'stranger-1') });
      expect(r.json).toMatchObject({ matched: true, kind: 'reply', match: 'in_reply_to', recorded: true });
      const signal = await signalOf(intro.id, 'reply');
      expect(signal).toMatchObject({ reason: 'stranger_reply', leadId: intro.leadId });
      expect(signal.evidence).toMatchObject({ sender: 'stranger', from: 'someone@elsewhere.test' });
      expect(await leadRow('m.okafor@larch-logistics.test')).toMatchObject({ repliedAt: null, stage: 'awareness' });
      expect(await runOf('m.okafor@larch-logistics.test')).toMatchObject({ state: 'active' });
    });

    it("records a reply from a colleague not yet in nurture as the account's, says so, and does not move the lead", async () => {
      const intro = await leadWithIntro('t.berg@fjord-freight.test', 'Tove');
      const r = await h.post('/v1/inbound', null, { raw: replyFrom('Ola Nilsen <ola.nilsen@fjord-freight.test>', intro, 'colleague-1') });
      expect(r.json).toMatchObject({ matched: true, kind: 'reply', recorded: true });
      expect((await signalOf(intro.id, 'reply')).reason).toBe('new_colleague_reply');
      const lead = await leadRow('t.berg@fjord-freight.test');
      expect(lead.repliedAt).toBeNull();
      expect(await runOf('t.berg@fjord-freight.test')).toMatchObject({ state: 'active' });
      const [line] = await h.ctx.db.select().from(activity).where(and(eq(activity.leadId, lead.id), eq(activity.kind, 'reply')));
      expect(line!.accountId).toBe(lead.accountId);
      expect(line!.detail).toContain('a new person to nurture');
    });

    it('counts a reply from a colleague who is a lead for that colleague, not for the lead it answered', async () => {
      const intro = await leadWithIntro('a.silva@tejo-retail.test', 'Ana');
      await leadWithIntro('b.costa@tejo-retail.test', 'Bruno');
      const r = await h.post('/v1/inbound', null, { raw: replyFrom('b.costa@tejo-retail.test', intro, 'colleague-2') });
      expect(r.json).toMatchObject({ matched: true, kind: 'reply', recorded: true });
      // Bruno's own reply: it counts for him (a reply meets the awareness threshold, so he moves on)…
      const bruno = await leadRow('b.costa@tejo-retail.test');
      expect(bruno).toMatchObject({ stage: 'interest' });
      expect(bruno.engagedAt).toBeInstanceOf(Date);
      // …and Ana, whose mail he answered, is where she was.
      expect(await leadRow('a.silva@tejo-retail.test')).toMatchObject({ repliedAt: null, stage: 'awareness', engagedAt: null });
      expect(await runOf('a.silva@tejo-retail.test')).toMatchObject({ state: 'active' });
      expect((await signalOf(intro.id, 'reply')).reason).toBe('colleague_reply');
    });

    it("counts the lead's own reply from a +tag subaddress", async () => {
      const intro = await leadWithIntro('k.meyer@rhein-bau.test', 'Kai');
      await h.post('/v1/inbound', null, { raw: replyFrom('k.meyer+work@rhein-bau.test', intro, 'own-1') });
      expect((await signalOf(intro.id, 'reply')).reason).toBe('reply');
      expect(await runOf('k.meyer@rhein-bau.test')).toMatchObject({ state: 'exited', exitReason: 'replied' });
    });
  });
});

/** The row a match named: to `email`, and no older than what was the latest when the mail came. */
async function matchedRow(messageId: string, email: string, latest: typeof messages.$inferSelect) {
  const [row] = await h.ctx.db.select().from(messages).where(eq(messages.messageId, messageId));
  expect(row?.toAddress).toBe(email);
  expect(row!.sentAt!.getTime()).toBeGreaterThanOrEqual(latest.sentAt!.getTime());
  return row!;
}

/** The latest message marked sent to `email` (undefined while none is: the relay can have it first). */
async function latestTo(email: string) {
  const rows = await h.ctx.db.select().from(messages).where(eq(messages.toAddress, email));
  return rows.filter((m) => m.sentAt).sort((a, b) => b.sentAt!.getTime() - a.sentAt!.getTime())[0];
}
