import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { autoReplyReason, detectAutoReply } from '../../src/engagement/autoreply.js';
import { bounceSeverity, combineStatus, parseBounce, type BounceSource } from '../../src/engagement/bounces.js';
import { parseComplaint } from '../../src/engagement/complaints.js';
import { htmlToPlain, inboundKind, parseInboundMail, type InboundKind } from '../../src/engagement/inbound.js';
import { extractNewText } from '../../src/engagement/quotes.js';
import { parseReturnDate } from '../../src/engagement/return-date.js';

type MailFixture = {
  file: string;
  kind: InboundKind;
  from?: string;
  inReplyTo: string | null;
  autoReason?: string;
  returnDate?: string | null;
  /** When the mail arrived (the reference for a return date when it has no Date header). */
  receivedAt?: string;
  newTextEquals?: string;
  newTextContains?: string[];
  newTextNotContains?: string[];
  bounce?: { action: string; status: string; recipient: string | null; originalMessageId: string | null; diagnosticContains: string; severity?: 'hard' | 'soft'; format?: 'report' | 'text' };
  complaint?: { feedbackType: string; recipient: string | null; originalMessageId: string | null; returnPathContains?: string };
};

const mailDir = new URL('../fixtures/mail/', import.meta.url);
const index = JSON.parse(readFileSync(new URL('index.json', mailDir), 'utf8')) as MailFixture[];
const raw = (file: string) => readFileSync(new URL(file, mailDir));

describe('parseInboundMail on real-client fixtures', () => {
  it('covers every kind', () => {
    expect(new Set(index.map((f) => f.kind))).toEqual(new Set(['reply', 'auto_reply', 'bounce', 'delayed', 'complaint', 'notice']));
    expect(index.length).toBeGreaterThanOrEqual(50);
    // Every fixture is listed, and every listed fixture exists.
    const files = readdirSync(mailDir).filter((f) => f.endsWith('.eml')).sort();
    expect(index.map((f) => f.file).sort()).toEqual(files);
  });

  it.each(index.map((f) => [f.file, f] as const))('%s', async (_file, fixture) => {
    const mail = await parseInboundMail(raw(fixture.file), fixture.receivedAt ? { receivedAt: new Date(fixture.receivedAt) } : {});
    expect(inboundKind(mail)).toBe(fixture.kind);
    expect(mail.inReplyTo).toBe(fixture.inReplyTo);
    // Zimbra's autoresponder sends In-Reply-To without References, as many autoresponders do.
    if (fixture.inReplyTo && 'references' in mail.headers) expect(mail.references).toContain(fixture.inReplyTo);
    if (fixture.from) expect(mail.from?.address).toBe(fixture.from);
    expect(mail.messageId).toMatch(/^[^<>\s]+@[^<>\s]+$/);

    if (fixture.newTextEquals !== undefined) expect(mail.newText).toBe(fixture.newTextEquals);
    for (const piece of fixture.newTextContains ?? []) expect(mail.newText).toContain(piece);
    for (const piece of fixture.newTextNotContains ?? []) expect(mail.newText).not.toContain(piece);

    if (fixture.kind === 'auto_reply') {
      expect(mail.autoReply.isAuto).toBe(true);
      expect(mail.autoReply.reason).toBe(fixture.autoReason);
      expect(mail.autoReply.returnDate?.toISOString().slice(0, 10) ?? null).toBe(fixture.returnDate ?? null);
    }
    if (fixture.kind === 'reply') expect(mail.autoReply).toEqual({ isAuto: false, reason: null, returnDate: null });

    const bounce = parseBounce(mail);
    if (fixture.bounce) {
      expect(bounce).toMatchObject({
        isDsn: true,
        isBounce: fixture.kind === 'bounce',
        action: fixture.bounce.action,
        status: fixture.bounce.status,
        recipient: fixture.bounce.recipient,
        originalMessageId: fixture.bounce.originalMessageId,
      });
      expect(bounce.diagnostic).toContain(fixture.bounce.diagnosticContains);
      if (fixture.bounce.severity) expect(bounceSeverity(bounce)).toBe(fixture.bounce.severity);
      if (fixture.bounce.format) expect(bounce.format).toBe(fixture.bounce.format);
    } else {
      expect(bounce.isDsn).toBe(false);
    }

    const complaint = parseComplaint(mail);
    if (fixture.complaint) {
      expect(complaint).toMatchObject({
        isReport: true,
        isComplaint: fixture.kind === 'complaint',
        feedbackType: fixture.complaint.feedbackType,
        recipient: fixture.complaint.recipient,
        originalMessageId: fixture.complaint.originalMessageId,
      });
      if (fixture.complaint.returnPathContains) expect(complaint.originalReturnPath).toContain(fixture.complaint.returnPathContains);
    } else {
      expect(complaint.isReport).toBe(false);
    }
  });

  it('parses CRLF line endings (as received over SMTP) the same as LF', async () => {
    const lf = raw('outlook365-reply.eml').toString('utf8');
    const [a, b] = await Promise.all([parseInboundMail(lf), parseInboundMail(lf.replace(/\n/g, '\r\n'))]);
    expect(b.newText).toBe(a.newText);
    expect(b.headers['thread-index']).toBe(a.headers['thread-index']);
  });

  it('exposes lower-cased raw headers, Exchange ones included', async () => {
    const mail = await parseInboundMail(raw('exchange-oof.eml'));
    expect(mail.headers['x-auto-response-suppress']).toBe('All');
    expect(mail.headers['thread-topic']).toBe('Vessel turnaround benchmarks');
    expect(mail.subject).toBe('Automatic reply: Vessel turnaround benchmarks');
  });

  it("names mail by its sender's Message-ID, not the one Gmail adds where it was missing or broken", async () => {
    const mail = (headers: string[]) => ['From: Ines Moreau <ines@moreau-freight.test>', 'To: sam@handrail.example', 'Subject: Re: a note', 'Date: Fri, 4 Dec 2026 09:12:40 +0100', ...headers, '', 'Thanks.', ''].join('\r\n');
    // Arrived without one: Gmail's own id, tagged, is no name for it.
    const missing = await parseInboundMail(mail(['Message-ID: <6571a2b4.050a0220.3c1f2.9d1eSMTPIN_ADDED_MISSING@mx.google.com>']));
    expect(missing.messageId).toBeNull();
    // Arrived with one Gmail couldn't read (no angle brackets): the original, which Gmail kept.
    const broken = await parseInboundMail(mail(['Message-ID: <6571a2b4.170a0220.1b2c.44e1SMTPIN_ADDED_BROKEN@mx.google.com>', 'X-Google-Original-Message-ID: 20261204081240.GA1234@moreau-freight.test']));
    expect(broken.messageId).toBe('20261204081240.GA1234@moreau-freight.test');
    // The sender's own id from a Gmail user is kept as it is.
    const own = await parseInboundMail(mail(['Message-ID: <CAH9x+Qm1r2s3t4u5v6w7x8y9z0@mail.gmail.com>']));
    expect(own.messageId).toBe('CAH9x+Qm1r2s3t4u5v6w7x8y9z0@mail.gmail.com');
  });

  it('decodes RFC 2047 sender names and subjects', async () => {
    const mail = await parseInboundMail(raw('german-gmail-reply.eml'));
    expect(mail.from).toEqual({ address: 'juergen.mueller@mueller-maschinenbau.test', name: 'Jürgen Müller' });
    expect(mail.subject).toBe('Re: Wartungsplanung für Ihre Fertigungslinien');
    expect(mail.date?.toISOString()).toBe('2026-01-05T13:14:40.000Z');
  });
});

describe('extractNewText', () => {
  it.each([
    [
      'Gmail',
      '<div dir="ltr">Yes, Thursday works.<br></div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Jan 5, 2026 at 10:00\u202fAM Marta Silva &lt;<a href="mailto:marta@lumen.test">marta@lumen.test</a>&gt; wrote:<br></div><blockquote class="gmail_quote">Hi Ana,<br>Old pitch.</blockquote></div>',
    ],
    [
      'Apple Mail',
      '<div>Yes, Thursday works.</div><div><br><blockquote type="cite"><div>On 5 Jan 2026, at 10:00, Marta Silva &lt;marta@lumen.test&gt; wrote:</div><div>Old pitch.</div></blockquote></div>',
    ],
    ['a bare blockquote', '<p>Yes, Thursday works.</p><blockquote>Old pitch.</blockquote>'],
  ])('handles %s HTML-only replies', (_client, html) => {
    expect(extractNewText(htmlToPlain(html))).toBe('Yes, Thursday works.');
  });

  it('keeps inline answers and drops the quoted lines between them', () => {
    const text = ['> Do you use Looker?', 'Yes, since 2023.', '', '> How many analysts?', 'Four.'].join('\n');
    expect(extractNewText(text)).toBe('Yes, since 2023.\n\nFour.');
  });

  it('cuts at the RFC 3676 signature delimiter', () => {
    expect(extractNewText('Sounds good.\n\n-- \nAna Costa\nCFO')).toBe('Sounds good.');
  });

  it.each([
    ['-----Ursprüngliche Nachricht-----\nVon: Marta'],
    ['-----Message d\'origine-----\nDe : Marta'],
    ['---------- Forwarded message ---------\nFrom: Marta'],
    ['Den 5 jan. 2026 kl. 10:00 skrev Marta Silva <marta@lumen.test>:\n> Hej'],
    ['Op ma 5 jan 2026 om 10:00 schreef Marta Silva <marta@lumen.test>:\n> Hoi'],
    ['De: Marta Silva <marta@lumen.test>\nEnviado: lunes, 5 de enero de 2026 10:00\nPara: Javier'],
  ])('stops at other clients\' history markers: %s', (history) => {
    expect(extractNewText(`Thanks, interested.\n\n${history}\nold text`)).toBe('Thanks, interested.');
  });

  it('does not cut a sentence that merely mentions who wrote something', () => {
    const text = 'On Monday our CFO wrote a memo about this.\nLet us talk.';
    expect(extractNewText(text)).toBe(text);
  });

  it('cuts at an attribution ending in the quoted sender\'s address only over "> " quoting', () => {
    expect(extractNewText('はい、大丈夫です。\n\n2026年1月5日(月) 18:02 Marta Silva <marta@lumen.test>:\n\n> Hi,\n> old')).toBe('はい、大丈夫です。');
    // The person's own line that ends in an address, over their own words, stays.
    const own = 'Please write to my colleague <b.berg@x.test>:\nshe runs purchasing now.';
    expect(extractNewText(own)).toBe(own);
    // A two-line one needs a date in its first line: a sign-off directly above is not taken with it.
    expect(extractNewText('Thanks\nMarta Silva <marta@lumen.test>:\n> old')).toBe('Thanks');
  });

  it('drops mobile footers in several languages', () => {
    for (const footer of ['Sent from my iPhone', 'Von meinem iPhone gesendet', 'Envoyé de mon iPad', 'Get Outlook for iOS', 'Verstuurd vanaf mijn iPhone', '发自我的iPhone', 'iPhoneから送信', 'Envoyé depuis mon appareil Galaxy', 'Outlook für Android herunterladen<https://aka.ms/AAb9ysg>']) {
      expect(extractNewText(`Yes please.\n\n${footer}`)).toBe('Yes please.');
    }
  });
});

describe('detectAutoReply', () => {
  const none = { headers: {}, subject: 'Re: hello', text: '', date: null };

  it('does not treat X-Auto-Response-Suppress alone as automatic (Outlook sets it on ordinary mail)', () => {
    expect(detectAutoReply({ ...none, headers: { 'x-auto-response-suppress': 'All' } }).isAuto).toBe(false);
  });

  it('honours RFC 3834 "Auto-Submitted: no"', () => {
    expect(autoReplyReason({ 'auto-submitted': 'no' }, 'Re: hello')).toBeNull();
    expect(autoReplyReason({ 'auto-submitted': 'auto-replied; owner-email="a@x.test"' }, 'Re: hello')).toBe('auto_submitted');
  });

  it.each([
    [{ precedence: 'bulk' }, 'precedence'],
    [{ precedence: 'list' }, 'precedence'],
    [{ 'x-autorespond': 'yes' }, 'x_autorespond'],
    [{ 'x-ms-exchange-inbox-rules-loop': 'a@x.test' }, 'exchange_inbox_rule'],
  ])('recognises %j', (headers, reason) => {
    expect(autoReplyReason(headers, 'Re: hello')).toBe(reason);
  });

  it.each(['Automatic reply: hello', 'Autosvar: hej', 'Réponse automatique : bonjour', 'Respuesta automática: hola', 'Automatisch antwoord: hallo', 'Automatyczna odpowiedź: dzień dobry', 'Automated Response: Re: hello', '自動応答: Re: hello', 'Ticket Received - 48213 - hello', 'We have received your request'])(
    'recognises the generated subject %s on its own',
    (subject) => expect(autoReplyReason({}, subject)).toBe('subject'),
  );

  it.each(['Out of Office: Q1 review', 'Away from the office', 'Afwezig', 'Fuori sede'])('recognises the absence subject %s with an absence notice below it', (subject) => {
    expect(autoReplyReason({}, subject, 'I am out of the office until 12 January with limited access to email.')).toBe('subject');
    // The subject alone is not enough: a person may write it.
    expect(autoReplyReason({}, subject)).toBeNull();
  });

  it('does not take a person answering about a ticket for a helpdesk', () => {
    expect(autoReplyReason({}, 'Re: Ticket received?', 'Did you get my ticket? I have not heard back.')).toBeNull();
  });

  it('recognises an absence named after the person (HCL Notes) with an absence notice below it', () => {
    expect(autoReplyReason({}, 'Hans Weber is out of the office.', 'I will be out of the office starting 05.01.2026.')).toBe('subject');
    expect(autoReplyReason({}, 'Hans Weber is out of the office.')).toBeNull();
  });

  it('reads no return date from someone who has left', () => {
    const date = new Date('2026-01-05T09:00:00Z');
    const left = (text: string) => detectAutoReply({ headers: { 'auto-submitted': 'auto-replied' }, subject: 'Automatic reply: hello', text, date }).returnDate;
    expect(left('I left Harbor Freight Lines on 31 December. This mailbox is kept open until 31 January.')).toBeNull();
    expect(left('Per has left the company; this mailbox is monitored until 31 January.')).toBeNull();
    expect(left('Herr Vogt hat das Unternehmen verlassen. Das Postfach bleibt bis 31. Januar aktiv.')).toBeNull();
    // Away, not gone: the date is read.
    expect(left('I am out of the office until 12 January. I left you a note with Sam.')?.toISOString().slice(0, 10)).toBe('2026-01-12');
  });

  it('does not treat a person asking about an absence as an autoresponder', () => {
    expect(autoReplyReason({}, 'Re: Out of office next week?')).toBeNull();
    expect(autoReplyReason({}, 'Re: out of office next week?', "I'm out of office next week. Could we talk on the 20th?")).toBeNull();
    expect(autoReplyReason({}, 'Out of office next week - can we move our call?', "I'm out of the office next week. Could we move to Monday?")).toBeNull();
    expect(autoReplyReason({}, "Back from OOO — let's talk", 'I was out of the office over the holidays. Can you call me?')).toBeNull();
  });

  it('recognises an autoresponder by its body when it carries neither headers nor subject', () => {
    const text = 'This is an automatic reply. I am currently out of the office and will be back on 13 January.';
    expect(autoReplyReason({}, 'Re: Batch records', text)).toBe('body');
    // A person saying they are away, in their own words, is still a person.
    expect(autoReplyReason({}, 'Re: Batch records', "I'm on vacation until the 12th but yes, let's talk after that.")).toBeNull();
  });
});

describe('parseReturnDate', () => {
  const monday = new Date('2026-01-05T09:00:00Z');
  const day = (d: Date | null) => d?.toISOString().slice(0, 10) ?? null;

  it.each([
    ['I will be back on Monday 12 January.', '2026-01-12'],
    ['Returning on 2026-01-19.', '2026-01-19'],
    ['Back on 12/01.', '2026-01-12'],
    ['I return on January 20th, 2026.', '2026-01-20'],
    ['Estaré de vuelta el 15 de enero.', '2026-01-15'],
    ['Je serai de retour le lundi 19 janvier.', '2026-01-19'],
    ['Ab dem 14.01. bin ich wieder im Büro.', '2026-01-14'],
    ['Ich bin bis 16. Januar 2026 nicht erreichbar.', '2026-01-16'],
    ['Вернусь в офис в понедельник, 12 января.', '2026-01-12'],
    ['Я в отпуске до 9 января включительно.', '2026-01-09'],
    ['1月13日（火）より出社いたします。', '2026-01-13'],
    ['1月13日以降に順次返信いたします。', '2026-01-13'],
    ['我将于1月14日回来。', '2026-01-14'],
    // A date with no return after it is only the absence's start: nothing to go on.
    ['1月5日～1月9日は出張のため不在にしております。', null],
    ['Back on Thursday.', '2026-01-08'],
    ['I am back tomorrow.', '2026-01-06'],
    ['Back in the office on 02/03.', null],
    ['I am out of the office with no fixed return.', null],
    // A stated return wins over the end of the absence, wherever it stands.
    ['I am out of the office from 5 to 16 January and will be back in the office on Monday 19 January.', '2026-01-19'],
    ['Out until 9 January. I will be back on 12 January.', '2026-01-12'],
    ['I am out from 7 to 16 January.', '2026-01-16'],
    ['I will be back Monday.', '2026-01-12'],
    ['I am travelling and back in the office on the 14th.', '2026-01-14'],
    ['Ik ben afwezig tot en met vrijdag 16 januari en ben weer aanwezig op maandag 19 januari.', '2026-01-19'],
    ['Vanaf 22 januari ben ik weer op kantoor.', '2026-01-22'],
    ['Ik ben tot 14 januari afwezig.', '2026-01-14'],
    ['Sarò fuori ufficio fino al 9 gennaio. Rientrerò in ufficio lunedì 12 gennaio.', '2026-01-12'],
    ['Estarei de volta a 14 de janeiro.', '2026-01-14'],
    ['Jag är tillbaka på kontoret den 13 januari.', '2026-01-13'],
    ['Jestem na urlopie do 9 stycznia.', '2026-01-09'],
    ['Wracam do biura 15 stycznia.', '2026-01-15'],
  ])('%s → %s', (text, expected) => {
    expect(day(parseReturnDate(text, monday))).toBe(expected);
  });

  it('rolls a yearless date over the new year', () => {
    expect(day(parseReturnDate('Back on 7 January.', new Date('2025-12-22T10:00:00Z')))).toBe('2026-01-07');
  });

  it('reads "tomorrow" in the sender\'s own time zone', () => {
    // Monday 22:15 in California is already Tuesday in UTC.
    const late = new Date('2026-01-06T06:15:00Z');
    expect(day(parseReturnDate('Back tomorrow.', late, { utcOffsetMinutes: -480 }))).toBe('2026-01-06');
    expect(day(parseReturnDate('Back tomorrow.', late))).toBe('2026-01-07');
  });

  it('resolves a day of the month to the next one after the mail\'s date', () => {
    expect(day(parseReturnDate('Back on the 3rd.', new Date('2026-01-20T10:00:00Z')))).toBe('2026-02-03');
  });

  it('returns null without the mail\'s own date to anchor it', () => {
    expect(parseReturnDate('Back on Monday 12 January.', null)).toBeNull();
  });
});

describe('parseBounce without a DSN part', () => {
  const base: BounceSource = { headers: {}, subject: '', text: '', deliveryStatus: null, returnedHeaders: null };

  it('recognises an old-style mailer-daemon notice by sender and subject together', () => {
    const bounce = parseBounce({
      ...base,
      headers: { from: 'Mail Delivery System <MAILER-DAEMON@mx.example.test>', 'x-failed-recipients': 'old@example.test' },
      subject: 'Mail delivery failed: returning message to sender',
      text: 'SMTP error from remote mail server after RCPT TO:<old@example.test>:\n550 5.1.1 No such user',
    });
    expect(bounce).toMatchObject({ isBounce: true, status: '5.1.1', recipient: 'old@example.test' });
  });

  it('does not call a person\'s message about an undeliverable parcel a bounce', () => {
    expect(parseBounce({ ...base, headers: { from: 'Ana <ana@x.test>' }, subject: 'Undeliverable parcel' }).isDsn).toBe(false);
  });
});

describe('combineStatus: the Status field and the diagnostic read together', () => {
  it.each([
    ['5.0.0', 'smtp; 550 5.1.1 user unknown', '5.1.1'],
    ['5.0.0', '550 unknown user account', '5.1.1'],
    ['5.0.0', "554 delivery error: dd This user doesn't have a yahoo.com account", '5.1.1'],
    ['5.0.0', '552 Mailbox is full', '5.2.2'],
    ['5.1.0', '550 5.1.1 <a@x.test>... User unknown', '5.1.1'],
    ['5.1.10', '550 5.1.10 RESOLVER.ADR.RecipientNotFound', '5.1.10'],
    ['5.7.1', '550 5.7.1 Message rejected as spam', '5.7.1'],
    // The report knows the MTA gave up: a 4xx diagnostic under a 5.x.x status is a failure with its detail.
    ['5.0.0', '452 4.2.2 Mailbox over quota', '5.2.2'],
    [null, '550 5.1.1 No such user', '5.1.1'],
    ['4.4.1', 'connect to mx.x.test[192.0.2.1]:25: Connection timed out', '4.4.1'],
    // Microsoft 365's directory-based edge blocking: 5.4.1 with words that mean "no such user".
    ['5.0.0', '550 5.4.1 Recipient address rejected: Access denied. AS(201806281)', '5.1.1'],
    [null, '550 5.4.1 Recipient address rejected: Access denied. AS(201806281)', '5.1.1'],
    ['5.4.1', '550 5.4.1 Relay access denied', '5.4.1'],
    [null, null, null],
  ])('Status %s with %s → %s', (status, diagnostic, expected) => {
    expect(combineStatus(status, diagnostic)).toBe(expected);
  });
});

describe('parseComplaint', () => {
  it('is not a complaint unless the report says abuse, fraud or other', () => {
    const headers = { 'content-type': 'multipart/report; report-type=feedback-report; boundary=x' };
    for (const [type, complaint] of [['abuse', true], ['fraud', true], ['other', true], ['not-spam', false], ['virus', false], ['auth-failure', false]] as const) {
      expect(parseComplaint({ headers, feedbackReport: `Feedback-Type: ${type}\nVersion: 1\n`, returnedHeaders: null }).isComplaint).toBe(complaint);
    }
  });

  it('does not take a redacted address for the recipient', () => {
    const headers = { 'content-type': 'multipart/report; report-type=feedback-report' };
    for (const rcpt of ['redacted@yahoo.com', '<xxxxxxxx@aol.com>', 'e3b0c44298fc1c149afbf4c8996fb924@example.test']) {
      expect(parseComplaint({ headers, feedbackReport: `Feedback-Type: abuse\nOriginal-Rcpt-To: ${rcpt}\n`, returnedHeaders: null }).recipient).toBeNull();
    }
  });
});

describe('extractNewText: bottom-posting and inline answers', () => {
  it('keeps what the person wrote below the quote', () => {
    const text = ['On Mon, 5 Jan 2026 at 10:00, Marta <marta@lumen.test> wrote:', '> Would Thursday work?', '> Marta', '', 'Thursday works.', '', '-- ', 'Ana'].join('\n');
    expect(extractNewText(text)).toBe('Thursday works.');
  });

  it('keeps a greeting, the answers between quotes and the sign-off', () => {
    const text = ['Hi Marta,', '', 'On 5 Jan 2026, at 10:00, Marta <marta@lumen.test> wrote:', '> Which ERP?', 'SAP.', '> How many sites?', 'Four.', '', 'Ana'].join('\n');
    expect(extractNewText(text)).toBe('Hi Marta,\n\nSAP.\n\nFour.\n\nAna');
  });

  it('leaves what follows the history alone when the person answered above it', () => {
    const text = ['Sounds good.', '', 'On Mon, 5 Jan 2026 at 10:00, Marta <marta@lumen.test> wrote:', '> Would Thursday work? It is a long line that a client', 're-wrapped without its quote marker', '', 'CONFIDENTIALITY NOTICE: this e-mail is confidential.'].join('\n');
    expect(extractNewText(text)).toBe('Sounds good.');
  });
});

describe('characters Postgres cannot store', () => {
  it('drops NULs (a quoted-printable =00, an encoded-word) from every field a record keeps', async () => {
    const raw = [
      'From: =?utf-8?Q?Nils=00_Berg?= <nils@fjord.test>',
      'To: sam@handrail.example',
      'Subject: =?utf-8?Q?Re:_hello=00there?=',
      'X-Note: a=00b',
      'Message-ID: <nul@fjord.test>',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'Thanks =00a lot',
      '',
    ].join('\r\n');
    const mail = await parseInboundMail(raw);
    const all = JSON.stringify(mail);
    expect(all).not.toContain('\\u0000');
    expect(mail.subject).toBe('Re: hellothere');
    expect(mail.newText).toContain('Thanks a lot');
    expect(mail.from).toEqual({ address: 'nils@fjord.test', name: 'Nils Berg' });
  });
});
