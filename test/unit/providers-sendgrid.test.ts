import { generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseInboundMail } from '../../src/engagement/inbound.js';
import { providers } from '../../src/engagement/providers/index.js';
import {
  SENDGRID_DEFAULT_TOLERANCE_SECONDS,
  parseSendgridEvent,
  parseSendgridEvents,
  sendgridInboundToRaw,
  verifySendgridSignature,
} from '../../src/engagement/providers/sendgrid.js';

const dir = new URL('../fixtures/providers/sendgrid/', import.meta.url);
const text = (file: string) => readFileSync(new URL(file, dir), 'utf8');
const json = (file: string) => JSON.parse(text(file)) as unknown;

const OURS = '0b9d5c3e-7f1a-4c2e-9a51-3d2f4e6a8b10@mail.nurture.example';
const SG_DANA = 'Lk8gKqZJRdW2tC1vNa9e3Q.recvd-5f8b7c6d4-x2kqp-1-695A1B2C-7.0';
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0';

// One row per event of events.json that nurture records, in order (processed and group_resubscribe are skipped).
const expected = [
  { kind: 'delivered', sourceId: 'sendgrid:ZGVsaXZlcmVkLTAtNDY2MDY2MjQtTGs4', messageId: OURS, providerMessageId: SG_DANA, email: 'dana.whitfield@northwind-logistics.com', at: '2026-01-01T10:00:05.000Z' },
  {
    kind: 'deferred',
    sourceId: 'sendgrid:ZGVmZXJyZWQtMS00NjYwNjYyNS1tUXo',
    messageId: '7c2e1d90-3b44-4a6f-8e21-5a9c0f1e2d33@mail.nurture.example',
    providerMessageId: 'mQz1vTnURkqP0aB8cD7eFg.recvd-5f8b7c6d4-x2kqp-1-695A1D20-3.0',
    email: 'ops@harborline.io',
    at: '2026-01-01T10:06:40.000Z',
    bounce: { permanent: false, status: '4.7.0' },
  },
  {
    kind: 'bounce',
    sourceId: 'sendgrid:Ym91bmNlLTAtNDY2MDY2MjYtUnd4',
    messageId: 'a41f0c77-9d2b-4e18-b6c3-0e7d5f2a9c41@mail.nurture.example',
    providerMessageId: 'Rwx2yZaBSg6hJk3lMn4oPq.recvd-5f8b7c6d4-x2kqp-1-695A1E4C-9.0',
    email: 'j.okafor@brightpath-analytics.com',
    at: '2026-01-01T10:11:40.000Z',
    bounce: { permanent: true, status: '5.1.1' },
  },
  {
    kind: 'bounce',
    sourceId: 'sendgrid:YmxvY2tlZC0wLTQ2NjA2NjI3LVN0dQ',
    messageId: 'c93e2b18-6f0d-4a72-9e45-1b8d7c6a5f20@mail.nurture.example',
    providerMessageId: 'Stu3vWxYTh7iKl4mNo5pQr.recvd-5f8b7c6d4-x2kqp-1-695A1EB0-2.0',
    email: 'procurement@meridian-freight.co.uk',
    at: '2026-01-01T10:13:20.000Z',
    bounce: { permanent: false, status: '5.7.1' },
  },
  {
    kind: 'dropped',
    sourceId: 'sendgrid:ZHJvcHBlZC0wLTQ2NjA2NjI4LVV2dw',
    messageId: 'e5a7f3c1-2b9d-4d60-8f14-6c3e0a9b7d52@mail.nurture.example',
    providerMessageId: 'Uvw4xYzATi8jLm5nOp6qRs.recvd-5f8b7c6d4-x2kqp-1-695A1F14-1.0',
    email: 'former.buyer@oldco-industries.com',
    at: '2026-01-01T10:15:00.000Z',
  },
  { kind: 'open', sourceId: 'sendgrid:b3Blbi0wLTQ2NjA2NjI0LUxrOGdLcVo', messageId: OURS, providerMessageId: SG_DANA, email: 'dana.whitfield@northwind-logistics.com', at: '2026-01-01T11:00:00.000Z', userAgent: CHROME, ip: '203.0.113.45' },
  {
    kind: 'click',
    sourceId: 'sendgrid:Y2xpY2stMC00NjYwNjYyNC1MazhnS3Fa',
    messageId: OURS,
    providerMessageId: SG_DANA,
    email: 'dana.whitfield@northwind-logistics.com',
    at: '2026-01-01T11:01:00.000Z',
    url: 'https://nurture.example/guides/freight-audit-checklist?utm_source=nurture',
    userAgent: CHROME,
    ip: '203.0.113.45',
  },
  { kind: 'complaint', sourceId: 'sendgrid:c3BhbXJlcG9ydC0wLTQ2NjA2NjI5LVd4eQ', messageId: null, providerMessageId: 'Wxy5zAbBUj9kMn6oPq7rSt.recvd-5f8b7c6d4-x2kqp-1-695A2010-4.0', email: 'm.lindqvist@polarbay.se', at: '2026-01-01T12:00:00.000Z' },
  {
    kind: 'unsubscribe',
    sourceId: 'sendgrid:dW5zdWJzY3JpYmUtMC00NjYwNjYzMC1ZemE',
    messageId: '4d8e2f61-0a3c-4b97-a5d2-9e1f7c3b6a08@mail.nurture.example',
    providerMessageId: 'Yza6bCdDVk0lNo7pQr8sTu.recvd-5f8b7c6d4-x2kqp-1-695A2170-6.0',
    email: 't.nguyen@crestline-mfg.com',
    at: '2026-01-01T12:20:00.000Z',
  },
  { kind: 'unsubscribe', sourceId: 'sendgrid:Z3JvdXBfdW5zdWJzY3JpYmUtMC00NjYw', messageId: null, providerMessageId: 'Abc7dEeFWl1mOp8qRs9tUv.recvd-5f8b7c6d4-x2kqp-1-695A2558-8.0', email: 'r.patel@sundial-health.org', at: '2026-01-01T12:36:40.000Z' },
] as const;

describe('SendGrid Event Webhook parsing', () => {
  const events = parseSendgridEvents(json('events.json'));

  it('records every event but processed and group_resubscribe', () => {
    expect(events.map((e) => e.kind)).toEqual(expected.map((e) => e.kind));
  });

  it.each(expected.map((e, i) => [i, e.kind, e] as const))('event %i (%s)', (i, _kind, want) => {
    const { at, ...rest } = want;
    const got = events[i]!;
    expect(got.provider).toBe('sendgrid');
    expect(got).toMatchObject(rest);
    expect(got.at.toISOString()).toBe(at);
    if (!('bounce' in want)) expect(got.kind === 'dropped' || got.bounce === undefined).toBe(true);
  });

  it('keeps the bounce reason as the diagnostic and the event itself as raw', () => {
    const bounce = events.find((e) => e.sourceId === 'sendgrid:Ym91bmNlLTAtNDY2MDY2MjYtUnd4')!;
    expect(bounce.bounce?.diagnostic).toMatch(/^550 5\.1\.1 The email account/);
    expect((bounce.raw as { bounce_classification: string }).bounce_classification).toBe('Invalid Address');
  });

  it('gives distinct source ids, and a hash when sg_event_id is missing', () => {
    expect(new Set(events.map((e) => e.sourceId)).size).toBe(events.length);
    const noId = { event: 'open', email: 'a@b.example', timestamp: 1767265200, sg_message_id: 'x.1' };
    const a = parseSendgridEvent(noId)!;
    expect(a.sourceId).toMatch(/^sendgrid:h:[0-9a-f]{40}$/);
    expect(parseSendgridEvent({ ...noId })!.sourceId).toBe(a.sourceId);
    expect(parseSendgridEvent({ ...noId, timestamp: 1767265201 })!.sourceId).not.toBe(a.sourceId);
  });

  it('reads our Message-ID from a custom arg named by the caller', () => {
    const ev = { event: 'open', email: 'a@b.example', timestamp: 1767265200, sg_event_id: 'e1', mid: '<x@y.example>' };
    expect(parseSendgridEvent(ev)!.messageId).toBeNull();
    expect(parseSendgridEvent(ev, { messageIdArg: 'mid' })!.messageId).toBe('x@y.example');
  });

  it('ignores junk', () => {
    expect(parseSendgridEvents([null, 3, { event: 'open' }, { event: 'nope', timestamp: 1 }])).toEqual([]);
    expect(providers.sendgrid.parseEvents(json('events.json'))).toHaveLength(expected.length);
  });
});

describe('SendGrid Signed Event Webhook', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  // What SendGrid shows under Mail Settings: base64 of the DER SubjectPublicKeyInfo.
  const verificationKey = publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
  const body = text('events.json');
  const timestamp = '1767261700';
  const now = new Date(1767261700 * 1000 + 30_000);
  const signature = sign('sha256', Buffer.from(timestamp + body), privateKey).toString('base64');
  const check = (over: Partial<Parameters<typeof verifySendgridSignature>[0]> = {}) =>
    verifySendgridSignature({ publicKey: verificationKey, rawBody: body, signature, timestamp, now, ...over });

  it('accepts the exact body with the right key, as string, Buffer or PEM key', () => {
    expect(check()).toEqual({ ok: true });
    expect(check({ rawBody: Buffer.from(body) })).toEqual({ ok: true });
    expect(check({ publicKey: publicKey.export({ format: 'pem', type: 'spki' }).toString() })).toEqual({ ok: true });
  });

  it('rejects a one-byte change to the body', () => {
    const tampered = Buffer.from(body);
    const at = tampered.indexOf('1767262300');
    tampered[at + 9] = tampered[at + 9]! + 1;
    expect(check({ rawBody: tampered })).toEqual({ ok: false, reason: 'bad signature' });
    // Re-serialising the parsed JSON is a change too: verification needs the bytes as received.
    expect(check({ rawBody: JSON.stringify(JSON.parse(body)) }).ok).toBe(false);
  });

  it('rejects another key, a moved timestamp and a stale one', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    expect(check({ publicKey: other })).toEqual({ ok: false, reason: 'bad signature' });
    expect(check({ timestamp: '1767261701' })).toEqual({ ok: false, reason: 'bad signature' });
    const late = new Date((1767261700 + SENDGRID_DEFAULT_TOLERANCE_SECONDS + 1) * 1000);
    expect(check({ now: late })).toEqual({ ok: false, reason: 'timestamp outside tolerance' });
    expect(check({ now: late, toleranceSeconds: 3600 })).toEqual({ ok: true });
  });

  it('rejects missing or malformed headers and keys without throwing', () => {
    expect(check({ signature: undefined })).toEqual({ ok: false, reason: 'missing signature header' });
    expect(check({ timestamp: '' })).toEqual({ ok: false, reason: 'missing timestamp header' });
    expect(check({ timestamp: '17e9' })).toEqual({ ok: false, reason: 'malformed timestamp' });
    expect(check({ publicKey: 'bm90IGEga2V5' }).ok).toBe(false);
    expect(check({ signature: 'AAAA' }).ok).toBe(false);
  });
});

describe('SendGrid Inbound Parse', () => {
  it('passes the raw MIME through when "POST the raw, full MIME message" is on', async () => {
    const fields = json('inbound-raw.json') as Record<string, string>;
    const raw = sendgridInboundToRaw(fields);
    expect(raw).toBe(fields.email);
    const mail = await parseInboundMail(raw);
    expect(mail.inReplyTo).toBe('a41f0c77-9d2b-4e18-b6c3-0e7d5f2a9c41@mail.nurture.example');
    expect(mail.text).toContain('Grüße aus Köln');
  });

  it('rebuilds a message from the headers block and the text/html parts', async () => {
    const fields = json('inbound-parsed.json') as Record<string, string>;
    const raw = sendgridInboundToRaw(fields);
    // The original multipart Content-Type (and its boundary) must not survive: the body is ours now.
    expect(raw).not.toContain('000000000000a1b2c3d4e5f60718');
    const mail = await parseInboundMail(raw);
    expect(mail.messageId).toBe('CAF7k2nQ9xL4u1mR8e0wZ3pVtY6sH5jD2cB@mail.gmail.com');
    expect(mail.inReplyTo).toBe(OURS);
    expect(mail.references).toEqual([OURS]);
    expect(mail.from).toEqual({ address: 'dana.whitfield@northwind-logistics.com', name: 'Dana Whitfield' });
    expect(mail.to).toEqual(['reply@in.nurture.example']);
    expect(mail.subject).toBe('Re: A freight-audit checklist for Q1');
    expect(mail.newText).toContain('Could we talk next Tuesday about the carrier invoices?');
    expect(mail.newText).not.toContain('Here is the checklist we promised');
    expect(mail.headers['dkim-signature']).toContain('d=northwind-logistics.com');
  });

  it('adds From/To/Subject from the fields when the headers block lacks them', async () => {
    const raw = sendgridInboundToRaw({ from: 'A <a@x.example>', to: 'b@y.example', subject: 'Hi', text: 'hello', headers: 'Message-ID: <m1@x.example>\n' });
    const mail = await parseInboundMail(raw);
    expect(mail.from?.address).toBe('a@x.example');
    expect(mail.subject).toBe('Hi');
    expect(mail.text.trim()).toBe('hello');
    expect(providers.sendgrid.inboundToRaw({ email: 'X: y\r\n\r\nbody' })).toBe('X: y\r\n\r\nbody');
  });
});

describe('SendGrid drops and custom arguments', () => {
  const dropped = parseSendgridEvents(json('events-dropped.json'));

  it('turns a drop for an address on a suppression list into what put it there', () => {
    expect(dropped.map((e) => [e.kind, e.email, e.suppresses ?? null])).toEqual([
      ['dropped', 'left.company@harborline.io', 'bounce'],
      ['dropped', 't.nguyen@crestline-mfg.com', 'unsubscribe'],
      ['dropped', 'm.lindqvist@polarbay.se', 'complaint'],
      ['dropped', 'ops@@harborline.io', 'bounce'],
      // About the message, not the address: suppresses nothing.
      ['dropped', 'dana.whitfield@northwind-logistics.com', null],
      ['dropped', 'j.okafor@brightpath-analytics.com', null],
    ]);
    expect(dropped[0]!.bounce?.diagnostic).toBe('Bounced Address');
  });

  it('reads our row id from unique_args, and a stable id even without sg_event_id', () => {
    expect(dropped[0]!.messageRowId).toBe('2f6a9c1e-5d3b-4e7a-9c20-8b1d4f6e2a93');
    expect(dropped[5]!.messageRowId).toBeNull();
    const invalid = dropped[3]!;
    expect(invalid.sourceId).toMatch(/^sendgrid:h:[0-9a-f]{40}$/);
    expect(parseSendgridEvents(json('events-dropped.json'))[3]!.sourceId).toBe(invalid.sourceId);
    // Not a UUID: not a row id of ours.
    expect(parseSendgridEvent({ event: 'open', email: 'a@b.example', timestamp: 1, sg_event_id: 'x', nurture_message: 'drop table' })!.messageRowId).toBeNull();
  });

  it('flags the opens SendGrid itself calls machine opens', () => {
    const events = parseSendgridEvents(json('events-custom-args.json'));
    expect(events.map((e) => [e.kind, e.machineOpen ?? false])).toEqual([
      ['delivered', false],
      ['open', true],
      ['open', false],
      ['click', false],
    ]);
    expect(new Set(events.map((e) => e.messageRowId))).toEqual(new Set(['9a7c3e51-0b2d-4f86-a1c4-5e8d2b7f3a06']));
  });
});
