import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseInboundMail } from '../../src/engagement/inbound.js';
import { providers } from '../../src/engagement/providers/index.js';
import {
  MAILGUN_DEFAULT_TOLERANCE_SECONDS,
  mailgunInboundToRaw,
  mailgunSignatureOf,
  parseMailgunEvent,
  verifyMailgunSignature,
} from '../../src/engagement/providers/mailgun.js';

const dir = new URL('../fixtures/providers/mailgun/', import.meta.url);
const json = (file: string) => JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as Record<string, unknown>;

const DANA = '0b9d5c3e-7f1a-4c2e-9a51-3d2f4e6a8b10@mail.nurture.example';
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

type Want = {
  kind: string;
  sourceId: string;
  messageId: string;
  email: string;
  at: string;
  bounce?: { permanent: boolean; status: string | null; diagnostic?: string };
  url?: string;
  userAgent?: string;
  ip?: string;
  messageRowId?: string | null;
  suppresses?: string;
};

const table: Record<string, Want | null> = {
  'delivered.json': { kind: 'delivered', sourceId: 'mailgun:CPgfbmQMTCKtHW6uIWtuVe:1767792605.284971', messageId: DANA, email: 'dana.whitfield@northwind-logistics.com', at: '2026-01-07T13:30:05.285Z' },
  'failed-permanent.json': {
    kind: 'bounce',
    sourceId: 'mailgun:G9Bn5sl1TC6nu79C8C0bwg:1767793351.592184',
    messageId: 'a41f0c77-9d2b-4e18-b6c3-0e7d5f2a9c41@mail.nurture.example',
    email: 'j.okafor@brightpath-analytics.com',
    at: '2026-01-07T13:42:31.592Z',
    bounce: { permanent: true, status: '5.1.1' },
  },
  'failed-temporary.json': {
    kind: 'deferred',
    sourceId: 'mailgun:Fs7-5t81S2ScjuWvXrdw4g:1767794000.113245',
    messageId: '7c2e1d90-3b44-4a6f-8e21-5a9c0f1e2d33@mail.nurture.example',
    email: 'ops@harborline.io',
    at: '2026-01-07T13:53:20.113Z',
    bounce: { permanent: false, status: '4.2.2', diagnostic: '452 4.2.2 The email account that you tried to reach is over quota.' },
  },
  'failed-suppress-bounce.json': {
    kind: 'dropped',
    sourceId: 'mailgun:hTWCTD81RtiDN-Lv0XtKqw:1767794500',
    messageId: 'e5a7f3c1-2b9d-4d60-8f14-6c3e0a9b7d52@mail.nurture.example',
    email: 'former.buyer@oldco-industries.com',
    at: '2026-01-07T14:01:40.000Z',
    bounce: { permanent: true, status: null, diagnostic: 'Not delivering to previously bounced address' },
    suppresses: 'bounce',
  },
  'failed-suppress-unsubscribe.json': {
    kind: 'dropped',
    sourceId: 'mailgun:pV3kR7tYQm2wB9xNc4sLdA:1767794560',
    messageId: '4d8e2f61-0a3c-4b97-a5d2-9e1f7c3b6a08@mail.nurture.example',
    messageRowId: '4d8e2f61-0a3c-4b97-a5d2-9e1f7c3b6a08',
    email: 't.nguyen@crestline-mfg.com',
    at: '2026-01-07T14:02:40.000Z',
    bounce: { permanent: true, status: null, diagnostic: 'Not delivering to unsubscribed address' },
    suppresses: 'unsubscribe',
  },
  'failed-suppress-complaint.json': {
    kind: 'dropped',
    sourceId: 'mailgun:zL8mQ2wEr5tY1uI7oP3aSg:1767794620',
    messageId: '3b7e1c95-8d2a-4f60-b9e4-1a6c3d8f5e27@mail.nurture.example',
    messageRowId: '3b7e1c95-8d2a-4f60-b9e4-1a6c3d8f5e27',
    email: 'm.lindqvist@polarbay.se',
    at: '2026-01-07T14:03:40.000Z',
    bounce: { permanent: true, status: null, diagnostic: 'Not delivering to a user who marked your messages as spam' },
    suppresses: 'complaint',
  },
  'opened.json': { kind: 'open', sourceId: 'mailgun:Ase7i2zsRYeDXztHGENqRA:1767796800.712835', messageId: DANA, email: 'dana.whitfield@northwind-logistics.com', at: '2026-01-07T14:40:00.713Z', userAgent: CHROME, ip: '203.0.113.45' },
  'clicked.json': {
    kind: 'click',
    sourceId: 'mailgun:Ase7i2zsRYeDXztHGENqRB:1767796870.004512',
    messageId: DANA,
    email: 'dana.whitfield@northwind-logistics.com',
    at: '2026-01-07T14:41:10.005Z',
    url: 'https://nurture.example/guides/freight-audit-checklist',
    userAgent: CHROME,
    ip: '203.0.113.45',
  },
  'complained.json': { kind: 'complaint', sourceId: 'mailgun:-Agny091SquKnsrW2NEKUA:1767883200', messageId: 'f17a9c2e-5b3d-4e81-a6f0-2c4d8e9b1a73@mail.nurture.example', email: 'm.lindqvist@polarbay.se', at: '2026-01-08T14:40:00.000Z' },
  'unsubscribed.json': { kind: 'unsubscribe', sourceId: 'mailgun:W3X4JOhFT-OZidZGKKr9iA:1767969600.421473', messageId: '4d8e2f61-0a3c-4b97-a5d2-9e1f7c3b6a08@mail.nurture.example', email: 't.nguyen@crestline-mfg.com', at: '2026-01-09T14:40:00.421Z' },
  'accepted.json': null,
};

describe('Mailgun webhooks', () => {
  it('has a row for every webhook fixture', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.json') && !f.startsWith('inbound'));
    expect(files.sort()).toEqual(Object.keys(table).sort());
  });

  it.each(Object.entries(table))('%s', (file, want) => {
    const got = parseMailgunEvent(json(file));
    if (want === null) {
      expect(got).toBeNull();
      return;
    }
    const { at, ...rest } = want;
    expect(got).toMatchObject({ provider: 'mailgun', providerMessageId: rest.messageId, ...rest });
    expect(got!.at.toISOString()).toBe(at);
    if (!want.bounce) expect(got!.bounce).toBeUndefined();
  });

  it('prefers our Message-ID from user-variables over the header, and accepts bare event-data', () => {
    const body = json('failed-permanent.json');
    const ed = { ...(body['event-data'] as object), 'user-variables': { nurture_message_id: 'other@mail.nurture.example' } };
    const got = parseMailgunEvent(ed)!;
    expect(got.messageId).toBe('other@mail.nurture.example');
    expect(got.providerMessageId).toBe('a41f0c77-9d2b-4e18-b6c3-0e7d5f2a9c41@mail.nurture.example');
  });

  it('reads the enhanced status from the SMTP message when enhanced-code is absent; "old" is not permanent', () => {
    const body = json('failed-permanent.json');
    const ed = body['event-data'] as Record<string, unknown>;
    const ds = { ...(ed['delivery-status'] as object), 'enhanced-code': undefined, message: '550 5.2.1 The email account that you tried to reach is disabled.' };
    expect(parseMailgunEvent({ ...ed, 'delivery-status': ds })!.bounce).toMatchObject({ permanent: true, status: '5.2.1' });
    expect(parseMailgunEvent({ ...ed, reason: 'old' })!.bounce?.permanent).toBe(false);
    expect(providers.mailgun.parseEvents(body)).toHaveLength(1);
    expect(providers.mailgun.parseEvents(json('accepted.json'))).toEqual([]);
  });
});

describe('Mailgun signature', () => {
  const signingKey = randomBytes(16).toString('hex');
  const sign = (timestamp: string, token: string, key = signingKey) => createHmac('sha256', key).update(timestamp + token).digest('hex');
  const body = json('delivered.json');
  const original = mailgunSignatureOf(body) as { timestamp: string; token: string };
  const signature = { ...original, signature: sign(original.timestamp, original.token) };
  const now = new Date(Number(original.timestamp) * 1000 + 5_000);

  it('accepts a body signed with the signing key, in the body or as inbound form fields', () => {
    expect(verifyMailgunSignature({ signingKey, signature, now })).toEqual({ ok: true });
    expect(verifyMailgunSignature({ signingKey, signature: { ...signature, signature: signature.signature.toUpperCase() }, now })).toEqual({ ok: true });
    const fields = json('inbound-parsed.json') as Record<string, string>;
    const signed = { ...fields, signature: sign(fields.timestamp!, fields.token!) };
    expect(verifyMailgunSignature({ signingKey, signature: mailgunSignatureOf(signed), now: new Date(Number(fields.timestamp) * 1000) })).toEqual({ ok: true });
  });

  it('rejects a one-byte change to the token or timestamp, another key, and a stale timestamp', () => {
    const token = original.token.slice(0, -1) + (original.token.endsWith('a') ? 'b' : 'a');
    expect(verifyMailgunSignature({ signingKey, signature: { ...signature, token }, now })).toEqual({ ok: false, reason: 'bad signature' });
    const timestamp = String(Number(original.timestamp) + 1);
    expect(verifyMailgunSignature({ signingKey, signature: { ...signature, timestamp }, now })).toEqual({ ok: false, reason: 'bad signature' });
    expect(verifyMailgunSignature({ signingKey: 'another-key', signature, now })).toEqual({ ok: false, reason: 'bad signature' });
    const late = new Date((Number(original.timestamp) + MAILGUN_DEFAULT_TOLERANCE_SECONDS + 1) * 1000);
    expect(verifyMailgunSignature({ signingKey, signature, now: late })).toEqual({ ok: false, reason: 'timestamp outside tolerance' });
    const early = new Date((Number(original.timestamp) - MAILGUN_DEFAULT_TOLERANCE_SECONDS - 1) * 1000);
    expect(verifyMailgunSignature({ signingKey, signature, now: early }).ok).toBe(false);
  });

  it('rejects the placeholder signature of the fixture and missing fields', () => {
    expect(verifyMailgunSignature({ signingKey, signature: mailgunSignatureOf(body), now }).ok).toBe(false);
    expect(verifyMailgunSignature({ signingKey, signature: { timestamp: original.timestamp, token: original.token }, now })).toEqual({ ok: false, reason: 'missing signature fields' });
    expect(verifyMailgunSignature({ signingKey, signature: { ...signature, timestamp: '1.5e9' }, now })).toEqual({ ok: false, reason: 'malformed timestamp' });
  });
});

describe('Mailgun inbound routes', () => {
  it('passes body-mime through', async () => {
    const fields = json('inbound-mime.json') as Record<string, string>;
    const raw = mailgunInboundToRaw(fields);
    expect(raw).toBe(fields['body-mime']);
    const mail = await parseInboundMail(raw);
    expect(mail.autoReply.isAuto).toBe(true);
    expect(mail.inReplyTo).toBe('7c2e1d90-3b44-4a6f-8e21-5a9c0f1e2d33@mail.nurture.example');
  });

  it('rebuilds a message from message-headers and the decoded bodies', async () => {
    const fields = json('inbound-parsed.json') as Record<string, string>;
    const raw = mailgunInboundToRaw(fields);
    expect(raw).not.toContain('b1_3c9d2e');
    const mail = await parseInboundMail(raw);
    expect(mail.messageId).toBe('20260108101530.GA48213@brightpath-analytics.com');
    expect(mail.inReplyTo).toBe('a41f0c77-9d2b-4e18-b6c3-0e7d5f2a9c41@mail.nurture.example');
    expect(mail.from).toEqual({ address: 'joy.okafor@brightpath-analytics.com', name: 'Joy Okafor' });
    expect(mail.subject).toBe('Re: Benchmarking your dispatch times');
    expect(mail.newText).toContain('Grüße aus Köln!');
    expect(mail.newText).not.toContain('Would benchmarks help?');
    expect(providers.mailgun.inboundToRaw(fields)).toBe(raw);
  });

  it('survives unparseable message-headers', async () => {
    const mail = await parseInboundMail(mailgunInboundToRaw({ 'message-headers': '{nope', from: 'a@x.example', subject: 'S', 'body-plain': 'b' }));
    expect(mail.from?.address).toBe('a@x.example');
    expect(mail.subject).toBe('S');
  });
});
