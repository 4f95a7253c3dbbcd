import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { autoReplyReason, detectAutoReply } from '../../src/engagement/autoreply.js';
import { parseBounce, type BounceSource } from '../../src/engagement/bounces.js';
import { htmlToPlain, inboundKind, parseInboundMail } from '../../src/engagement/inbound.js';
import { extractNewText } from '../../src/engagement/quotes.js';
import { parseReturnDate } from '../../src/engagement/return-date.js';

type MailFixture = {
  file: string;
  kind: 'reply' | 'auto_reply' | 'bounce' | 'delayed';
  from?: string;
  inReplyTo: string | null;
  autoReason?: string;
  returnDate?: string | null;
  newTextEquals?: string;
  newTextContains?: string[];
  newTextNotContains?: string[];
  bounce?: { action: string; status: string; recipient: string; originalMessageId: string; diagnosticContains: string };
};

const mailDir = new URL('../fixtures/mail/', import.meta.url);
const index = JSON.parse(readFileSync(new URL('index.json', mailDir), 'utf8')) as MailFixture[];
const raw = (file: string) => readFileSync(new URL(file, mailDir));

describe('parseInboundMail on real-client fixtures', () => {
  it('covers every kind', () => {
    expect(new Set(index.map((f) => f.kind))).toEqual(new Set(['reply', 'auto_reply', 'bounce', 'delayed']));
    expect(index.length).toBeGreaterThanOrEqual(14);
  });

  it.each(index.map((f) => [f.file, f] as const))('%s', async (_file, fixture) => {
    const mail = await parseInboundMail(raw(fixture.file));
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
    } else {
      expect(bounce.isDsn).toBe(false);
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

  it('drops mobile footers in several languages', () => {
    for (const footer of ['Sent from my iPhone', 'Von meinem iPhone gesendet', 'Envoyé de mon iPad', 'Get Outlook for iOS']) {
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

  it.each(['Out of Office: Q1 review', 'Automatic reply: hello', 'Autosvar: hej', 'Réponse automatique : bonjour', 'Respuesta automática: hola', 'Away from the office'])(
    'recognises the subject %s',
    (subject) => expect(autoReplyReason({}, subject)).toBe('subject'),
  );

  it('does not treat a person asking about an absence as an autoresponder', () => {
    expect(autoReplyReason({}, 'Re: Out of office next week?')).toBeNull();
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
    ['Ab dem 14.01. bin ich wieder im Büro.', null],
    ['Ich bin bis 16. Januar 2026 nicht erreichbar.', '2026-01-16'],
    ['Back on Thursday.', '2026-01-08'],
    ['I am back tomorrow.', '2026-01-06'],
    ['Back in the office on 02/03.', null],
    ['I am out of the office with no fixed return.', null],
  ])('%s → %s', (text, expected) => {
    expect(day(parseReturnDate(text, monday))).toBe(expected);
  });

  it('rolls a yearless date over the new year', () => {
    expect(day(parseReturnDate('Back on 7 January.', new Date('2025-12-22T10:00:00Z')))).toBe('2026-01-07');
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
