import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseInboundMail } from '../../src/engagement/inbound.js';
import { providers } from '../../src/engagement/providers/index.js';
import { parsePostmarkEvent, postmarkInboundToRaw, verifyBasicAuth } from '../../src/engagement/providers/postmark.js';

const dir = new URL('../fixtures/providers/postmark/', import.meta.url);
const json = (file: string) => JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as unknown;

const DANA = '0b9d5c3e-7f1a-4c2e-9a51-3d2f4e6a8b10@mail.nurture.example';
const PM_DANA = '6f0f7d2e-3c1b-4b8a-9a55-2e91c0d4f7a3';

type Want = {
  kind: string;
  sourceId?: string | RegExp;
  messageId: string | null;
  providerMessageId: string;
  email: string;
  at: string;
  bounce?: { permanent: boolean; status: string | null; diagnostic?: string };
  url?: string;
  userAgent?: string;
  ip?: string;
  messageRowId?: string | null;
};

const table: Record<string, Want | null> = {
  'delivery.json': { kind: 'delivered', sourceId: /^postmark:h:[0-9a-f]{40}$/, messageId: DANA, providerMessageId: PM_DANA, email: 'dana.whitfield@northwind-logistics.com', at: '2026-01-07T13:30:04.617Z' },
  'bounce-hard.json': {
    kind: 'bounce',
    sourceId: 'postmark:bounce:3719508524',
    messageId: 'a41f0c77-9d2b-4e18-b6c3-0e7d5f2a9c41@mail.nurture.example',
    providerMessageId: 'a3c7e1b9-5d2f-4e60-8b14-7f9d0c2e6a51',
    email: 'j.okafor@brightpath-analytics.com',
    at: '2026-01-07T19:02:31.445Z',
    bounce: { permanent: true, status: '5.1.1', diagnostic: "smtp;550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces." },
  },
  'bounce-soft.json': {
    kind: 'bounce',
    sourceId: 'postmark:bounce:3719511876',
    messageId: null,
    providerMessageId: 'c0d4e8f2-1a3b-4c5d-9e6f-708192a3b4c5',
    email: 'ops@harborline.io',
    at: '2026-01-08T09:12:00.000Z',
    bounce: { permanent: false, status: '4.2.2' },
  },
  'bounce-autoresponder.json': null,
  'spam-complaint.json': {
    kind: 'complaint',
    sourceId: 'postmark:spam:3719520042',
    messageId: 'f17a9c2e-5b3d-4e81-a6f0-2c4d8e9b1a73@mail.nurture.example',
    providerMessageId: 'e2f6a0b4-3c5d-4e7f-9081-92a3b4c5d6e7',
    email: 'm.lindqvist@polarbay.se',
    at: '2026-01-09T16:45:10.123Z',
  },
  'open.json': {
    kind: 'open',
    sourceId: /^postmark:h:/,
    messageId: DANA,
    providerMessageId: PM_DANA,
    email: 'dana.whitfield@northwind-logistics.com',
    at: '2026-01-07T14:20:00.123Z',
    userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
    ip: '203.0.113.45',
  },
  'click.json': {
    kind: 'click',
    sourceId: /^postmark:h:/,
    messageId: DANA,
    providerMessageId: PM_DANA,
    email: 'dana.whitfield@northwind-logistics.com',
    at: '2026-01-07T14:21:30.500Z',
    url: 'https://nurture.example/guides/freight-audit-checklist',
    ip: '198.51.100.77',
  },
  'subscription-change-unsubscribe.json': {
    kind: 'unsubscribe',
    messageId: '4d8e2f61-0a3c-4b97-a5d2-9e1f7c3b6a08@mail.nurture.example',
    providerMessageId: 'f3a7b1c5-4d6e-4f80-a192-a3b4c5d6e7f8',
    email: 't.nguyen@crestline-mfg.com',
    at: '2026-01-10T08:05:00.000Z',
  },
  'subscription-change-resubscribe.json': null,
  // An ISP block says nothing about the address: a soft bounce.
  'bounce-blocked.json': {
    kind: 'bounce',
    sourceId: 'postmark:bounce:4323372036',
    messageId: null,
    messageRowId: 'c93e2b18-6f0d-4a72-9e45-1b8d7c6a5f20',
    providerMessageId: 'c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f',
    email: 'procurement@meridian-freight.co.uk',
    at: '2026-01-08T14:15:42.516Z',
    bounce: { permanent: false, status: '5.7.1' },
  },
  // X-PM-Metadata-nurture_message on the way out: our row id in Metadata.
  'open-custom-arg.json': {
    kind: 'open',
    sourceId: /^postmark:h:/,
    messageId: null,
    messageRowId: '0b9d5c3e-7f1a-4c2e-9a51-3d2f4e6a8b10',
    providerMessageId: '8d3a6b1c-2e4f-4a7b-9c5d-1e3f5a7b9c2d',
    email: 'dana.whitfield@northwind-logistics.com',
    at: '2026-01-09T08:05:11.345Z',
  },
};

describe('Postmark webhooks', () => {
  it('has a row for every webhook fixture', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.json') && !f.startsWith('inbound'));
    expect(files.sort()).toEqual(Object.keys(table).sort());
  });

  it.each(Object.entries(table))('%s', (file, want) => {
    const got = parsePostmarkEvent(json(file));
    if (want === null) {
      expect(got).toBeNull();
      return;
    }
    expect(got).not.toBeNull();
    const { at, sourceId, ...rest } = want;
    expect(got!.provider).toBe('postmark');
    expect(got).toMatchObject(rest);
    expect(got!.at.toISOString()).toBe(at);
    if (sourceId instanceof RegExp) expect(got!.sourceId).toMatch(sourceId);
    else if (sourceId) expect(got!.sourceId).toBe(sourceId);
    if (!want.bounce) expect(got!.bounce).toBeUndefined();
    expect(got!.raw).toEqual(json(file));
  });

  it('gives the same hashed id to a retried hook and different ids to different opens', () => {
    const open = json('open.json') as Record<string, unknown>;
    const a = parsePostmarkEvent(open)!.sourceId;
    expect(parsePostmarkEvent({ ...open })!.sourceId).toBe(a);
    expect(parsePostmarkEvent({ ...open, ReceivedAt: '2026-01-07T15:00:00Z' })!.sourceId).not.toBe(a);
    expect(parsePostmarkEvent(json('click.json'))!.sourceId).not.toBe(a);
  });

  it('treats Inactive as permanent whatever the Type, and reads the DSN Status from Content', () => {
    const soft = json('bounce-soft.json') as Record<string, unknown>;
    expect(parsePostmarkEvent({ ...soft, Type: 'Blocked', TypeCode: 100006, Inactive: true })!.bounce?.permanent).toBe(true);
    const hard = json('bounce-hard.json') as Record<string, unknown>;
    expect(parsePostmarkEvent({ ...hard, Details: 'no code here' })!.bounce?.status).toBe('5.1.1');
  });

  it('maps an Unsubscribe-type bounce record and honours a custom metadata key', () => {
    const soft = json('bounce-soft.json') as Record<string, unknown>;
    expect(parsePostmarkEvent({ ...soft, Type: 'Unsubscribe', TypeCode: 16 })!.kind).toBe('unsubscribe');
    const withMeta = { ...soft, Metadata: { mid: 'x@y.example' } };
    expect(parsePostmarkEvent(withMeta)!.messageId).toBeNull();
    expect(parsePostmarkEvent(withMeta, { messageIdArg: 'mid' })!.messageId).toBe('x@y.example');
    expect(providers.postmark.parseEvents(json('delivery.json'))).toHaveLength(1);
    expect(providers.postmark.parseEvents({ RecordType: 'Inbound' })).toEqual([]);
  });
});

describe('Postmark basic auth', () => {
  const header = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;

  it('accepts the configured credentials', () => {
    expect(verifyBasicAuth(header('postmark:s3cr3t:with:colons'), 'postmark', 's3cr3t:with:colons')).toEqual({ ok: true });
    expect(verifyBasicAuth(`basic   ${Buffer.from('u:p').toString('base64')}`, 'u', 'p')).toEqual({ ok: true });
  });

  it('rejects wrong, missing or malformed credentials', () => {
    expect(verifyBasicAuth(header('postmark:s3cr3u'), 'postmark', 's3cr3t')).toEqual({ ok: false, reason: 'bad credentials' });
    expect(verifyBasicAuth(header('postmarx:s3cr3t'), 'postmark', 's3cr3t')).toEqual({ ok: false, reason: 'bad credentials' });
    expect(verifyBasicAuth(header('postmark:s3cr3t'), 'postmark', 's3cr3t!')).toEqual({ ok: false, reason: 'bad credentials' });
    expect(verifyBasicAuth(undefined, 'u', 'p')).toEqual({ ok: false, reason: 'missing authorization header' });
    expect(verifyBasicAuth('Bearer abc', 'u', 'p')).toEqual({ ok: false, reason: 'not basic auth' });
    expect(verifyBasicAuth(header('nocolon'), 'u', 'p')).toEqual({ ok: false, reason: 'malformed credentials' });
  });
});

describe('Postmark inbound', () => {
  it('rebuilds the message from Headers and the top-level fields', async () => {
    const raw = postmarkInboundToRaw(json('inbound.json'));
    const mail = await parseInboundMail(raw);
    expect(mail.messageId).toBe('CAF7k2nQ9xL4u1mR8e0wZ3pVtY6sH5jD2cB@mail.gmail.com');
    expect(mail.inReplyTo).toBe(DANA);
    expect(mail.from).toEqual({ address: 'dana.whitfield@northwind-logistics.com', name: 'Dana Whitfield' });
    expect(mail.to).toEqual(['7f3c1e9a2b4d6f80a1c3e5b7d9f1a3c5+lead42@inbound.postmarkapp.com']);
    expect(mail.subject).toBe('Re: A freight-audit checklist for Q1');
    expect(mail.date?.toISOString()).toBe('2026-01-07T14:02:01.000Z');
    expect(mail.newText).toContain('carrier invoices');
    expect(mail.newText).not.toContain('checklist we promised');
    expect(mail.headers['x-spam-status']).toBe('No');
  });

  it('prefers RawEmail when the stream includes it', () => {
    const withRaw = { ...(json('inbound.json') as object), RawEmail: 'From: a@b.example\r\n\r\nhi\r\n' };
    expect(postmarkInboundToRaw(withRaw)).toBe('From: a@b.example\r\n\r\nhi\r\n');
    expect(providers.postmark.inboundToRaw(withRaw)).toBe('From: a@b.example\r\n\r\nhi\r\n');
  });

  it('keeps an HTML-only reply readable', async () => {
    const html = { ...(json('inbound.json') as object), TextBody: '', HtmlBody: '<p>Yes — <b>Tuesday</b> works.</p>' };
    const mail = await parseInboundMail(postmarkInboundToRaw(html));
    expect(mail.text).toContain('Tuesday works.');
  });
});
