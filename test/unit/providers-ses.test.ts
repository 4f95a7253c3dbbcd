import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseInboundMail } from '../../src/engagement/inbound.js';
import { providers } from '../../src/engagement/providers/index.js';
import {
  isTrustedSigningCertUrl,
  isTrustedSubscribeUrl,
  parseSesNotification,
  parseSesSnsEnvelope,
  sesInboundToRaw,
  snsStringToSign,
  verifySnsSignature,
} from '../../src/engagement/providers/ses.js';

const dir = new URL('../fixtures/providers/ses/', import.meta.url);
const json = (file: string) => JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as Record<string, unknown>;

const DANA = '0b9d5c3e-7f1a-4c2e-9a51-3d2f4e6a8b10@mail.nurture.example';
const SES_DANA = '0100019b9a4f3e2d-1c0b9a8f-7e6d-4c5b-a493-82716f5e4d3c-000000';
const HARBOR = '7c2e1d90-3b44-4a6f-8e21-5a9c0f1e2d33@mail.nurture.example';
const SES_HARBOR = '0100019ba0c1a2b3-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d-000000';

type Want = {
  kind: string;
  sourceId?: string;
  messageId: string | null;
  providerMessageId: string;
  email: string | null;
  at: string;
  bounce?: { permanent: boolean; status: string | null; diagnostic?: string | null };
  url?: string;
  userAgent?: string;
  ip?: string;
  messageRowId?: string | null;
};

const table: Record<string, Want[]> = {
  'bounce-permanent.json': [
    {
      kind: 'bounce',
      sourceId: 'ses:0100019b9a6e7f21-3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f-000000:j.okafor@brightpath-analytics.com',
      messageId: 'a41f0c77-9d2b-4e18-b6c3-0e7d5f2a9c41@mail.nurture.example',
      providerMessageId: '0100019b9a6e5c3b-8f1e2d3c-4b5a-4697-8897-a6b5c4d3e2f1-000000',
      email: 'j.okafor@brightpath-analytics.com',
      at: '2026-01-07T14:02:31.802Z',
      bounce: { permanent: true, status: '5.1.1', diagnostic: 'smtp; 550 5.1.1 user unknown' },
    },
  ],
  'bounce-transient-notification.json': ['ops@harborline.io', 'dispatch@harborline.io'].map((email) => ({
    kind: 'bounce',
    sourceId: `ses:0100019ba0c4d2e1-5f6a7b8c-9d0e-4f1a-8b2c-3d4e5f6a7b8c-000000:${email}`,
    messageId: HARBOR,
    providerMessageId: SES_HARBOR,
    email,
    at: '2026-01-08T09:12:00.551Z',
    bounce: { permanent: false, status: '4.2.2', diagnostic: 'smtp; 452 4.2.2 Mailbox full' },
  })),
  'complaint.json': [
    {
      kind: 'complaint',
      sourceId: 'ses:0100019ba7e6f5d4-6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d-000000:m.lindqvist@polarbay.se',
      messageId: 'f17a9c2e-5b3d-4e81-a6f0-2c4d8e9b1a73@mail.nurture.example',
      providerMessageId: '0100019ba7e0a1b2-2b3c4d5e-6f70-4819-a2b3-c4d5e6f70819-000000',
      email: 'm.lindqvist@polarbay.se',
      at: '2026-01-09T16:45:10.000Z',
    },
  ],
  'delivery.json': [{ kind: 'delivered', messageId: DANA, providerMessageId: SES_DANA, email: 'dana.whitfield@northwind-logistics.com', at: '2026-01-07T13:30:04.617Z' }],
  'open.json': [
    {
      kind: 'open',
      messageId: DANA,
      providerMessageId: SES_DANA,
      email: 'dana.whitfield@northwind-logistics.com',
      at: '2026-01-07T14:20:00.123Z',
      ip: '203.0.113.45',
      userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
    },
  ],
  'click.json': [
    { kind: 'click', messageId: DANA, providerMessageId: SES_DANA, email: 'dana.whitfield@northwind-logistics.com', at: '2026-01-07T14:21:30.500Z', ip: '198.51.100.77', url: 'https://nurture.example/guides/freight-audit-checklist' },
  ],
  'delivery-delay.json': [
    { kind: 'deferred', messageId: HARBOR, providerMessageId: SES_HARBOR, email: 'ops@harborline.io', at: '2026-01-08T09:39:59.100Z', bounce: { permanent: false, status: '4.4.1', diagnostic: 'smtp; 421 4.4.1 Connection timed out' } },
  ],
  'reject.json': [
    {
      kind: 'dropped',
      messageId: 'b6d2a9e4-1c7f-4d38-9e05-7a3b2c1d0e9f@mail.nurture.example',
      providerMessageId: '0100019ba16b2c3d-4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8-000000',
      email: 'r.patel@sundial-health.org',
      at: '2026-01-08T11:00:00.000Z',
      bounce: { permanent: true, status: null, diagnostic: 'Bad content' },
    },
  ],
  // X-SES-MESSAGE-TAGS: nurture_message=<row id> comes back under mail.tags.
  'open-tagged.json': [
    {
      kind: 'open',
      messageId: DANA,
      messageRowId: '0b9d5c3e-7f1a-4c2e-9a51-3d2f4e6a8b10',
      providerMessageId: SES_DANA,
      email: 'dana.whitfield@northwind-logistics.com',
      at: '2026-01-07T14:20:00.123Z',
    },
  ],
  // The account-level suppression list: SES reports a permanent bounce, never sent.
  'bounce-suppression-list.json': [
    {
      kind: 'bounce',
      sourceId: 'ses:0100019b9a7f8031-4d5e6f7a-8b9c-4dae-9f10-2b3c4d5e6f70-000000:former.buyer@oldco-industries.com',
      messageId: 'a41f0c77-9d2b-4e18-b6c3-0e7d5f2a9c41@mail.nurture.example',
      providerMessageId: '0100019b9a6e5c3b-8f1e2d3c-4b5a-4697-8897-a6b5c4d3e2f1-000000',
      email: 'former.buyer@oldco-industries.com',
      at: '2026-01-07T14:02:31.802Z',
      bounce: { permanent: true, status: '5.1.1' },
    },
  ],
  // List management: the person unsubscribed from everything with the List-Unsubscribe header.
  'subscription-unsubscribe.json': [{ kind: 'unsubscribe', messageId: DANA, providerMessageId: SES_DANA, email: 'dana.whitfield@northwind-logistics.com', at: '2026-01-07T15:02:11.004Z' }],
  'send.json': [],
  'subscription-confirmation.json': [],
  'inbound-received.json': [],
};

describe('SES events via SNS', () => {
  it('has a row for every fixture', () => {
    expect(readdirSync(dir).filter((f) => f.endsWith('.json')).sort()).toEqual(Object.keys(table).sort());
  });

  it.each(Object.entries(table))('%s', (file, wants) => {
    const got = parseSesSnsEnvelope(json(file));
    expect(got).toHaveLength(wants.length);
    wants.forEach((want, i) => {
      const { at, ...rest } = want;
      expect(got[i]).toMatchObject({ provider: 'ses', ...rest });
      expect(got[i]!.sourceId).toMatch(/^ses:/);
      expect(got[i]!.at.toISOString()).toBe(at);
      if (!want.bounce) expect(got[i]!.bounce).toBeUndefined();
    });
    expect(new Set(got.map((e) => e.sourceId)).size).toBe(got.length);
  });

  it('gives the same id to a redelivered notification and parses the bare SES record alike', () => {
    const env = json('delivery.json');
    const a = parseSesSnsEnvelope(env)[0]!;
    expect(parseSesSnsEnvelope({ ...env, MessageId: 'another-sns-id' })[0]!.sourceId).toBe(a.sourceId);
    expect(parseSesNotification(JSON.parse(env.Message as string))[0]!.sourceId).toBe(a.sourceId);
    expect(parseSesSnsEnvelope(json('open.json'))[0]!.sourceId).not.toBe(a.sourceId);
  });

  it('falls back to commonHeaders, and ignores a Message-ID that is only SES\'s own', () => {
    const message = JSON.parse(json('delivery.json').Message as string) as { mail: Record<string, unknown> };
    const common = message.mail.commonHeaders as Record<string, unknown>;
    const noHeaders = { ...message, mail: { ...message.mail, headers: undefined } };
    expect(parseSesNotification(noHeaders)[0]!.messageId).toBe(DANA);
    const sesOwn = { ...message, mail: { ...message.mail, headers: undefined, commonHeaders: { ...common, messageId: `<${SES_DANA}@email.amazonses.com>` } } };
    expect(parseSesNotification(sesOwn)[0]!.messageId).toBeNull();
  });

  it('maps a Subscription record that unsubscribes from everything', () => {
    const message = JSON.parse(json('delivery.json').Message as string) as Record<string, unknown>;
    const sub = (unsubscribeAll: boolean) => ({
      ...message,
      eventType: 'Subscription',
      delivery: undefined,
      subscription: { contactList: 'nurture', timestamp: '2026-01-10T08:05:00.000Z', source: 'UnsubscribeHeader', newTopicPreferences: { unsubscribeAll, topicSubscriptionStatus: [] } },
    });
    expect(parseSesNotification(sub(true))).toMatchObject([{ kind: 'unsubscribe', email: 'dana.whitfield@northwind-logistics.com', messageId: DANA }]);
    expect(parseSesNotification(sub(false))).toEqual([]);
  });

  it('ignores junk', () => {
    expect(parseSesSnsEnvelope({ Type: 'Notification', Message: 'not json' })).toEqual([]);
    expect(parseSesNotification('x')).toEqual([]);
    expect(providers.ses.parseEvents(json('complaint.json'))).toHaveLength(1);
  });
});

describe('snsStringToSign', () => {
  it('signs Message, MessageId, Subject, Timestamp, TopicArn, Type for a notification, each as "Name\\nvalue\\n"', () => {
    const env = { Type: 'Notification', MessageId: 'm-1', TopicArn: 'arn:t', Subject: 'Hello\nthere', Message: '{"a":1}', Timestamp: '2026-01-01T00:00:00.000Z', SignatureVersion: '1', Signature: 'x', SigningCertURL: 'u', UnsubscribeURL: 'v' };
    expect(snsStringToSign(env)).toBe('Message\n{"a":1}\nMessageId\nm-1\nSubject\nHello\nthere\nTimestamp\n2026-01-01T00:00:00.000Z\nTopicArn\narn:t\nType\nNotification\n');
    const { Subject: _s, ...noSubject } = env;
    expect(snsStringToSign(noSubject)).toBe('Message\n{"a":1}\nMessageId\nm-1\nTimestamp\n2026-01-01T00:00:00.000Z\nTopicArn\narn:t\nType\nNotification\n');
    expect(snsStringToSign({ ...env, Subject: null })).toBe(snsStringToSign(noSubject));
  });

  it('signs Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type for confirmations', () => {
    const env = json('subscription-confirmation.json');
    expect(snsStringToSign(env)).toBe(
      `Message\n${env.Message}\nMessageId\n${env.MessageId}\nSubscribeURL\n${env.SubscribeURL}\nTimestamp\n${env.Timestamp}\nToken\n${env.Token}\nTopicArn\n${env.TopicArn}\nType\nSubscriptionConfirmation\n`,
    );
    expect(snsStringToSign({ ...env, Type: 'UnsubscribeConfirmation' })).toContain('SubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription');
    // Lambda-style key spelling
    const { SubscribeURL, ...rest } = env;
    expect(snsStringToSign({ ...rest, SubscribeUrl: SubscribeURL })).toBe(snsStringToSign(env));
  });

  it('refuses unknown types and missing fields', () => {
    expect(() => snsStringToSign({ ...json('delivery.json'), Type: 'Other' })).toThrow(/unknown SNS message type/);
    const { Token: _t, ...noToken } = json('subscription-confirmation.json');
    expect(() => snsStringToSign(noToken)).toThrow(/without Token/);
  });
});

describe('verifySnsSignature', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicPem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const signed = (env: Record<string, unknown>, version: '1' | '2', key: KeyObject = privateKey): Record<string, unknown> => {
    const e = { ...env, SignatureVersion: version };
    return { ...e, Signature: sign(version === '1' ? 'sha1' : 'sha256', Buffer.from(snsStringToSign(e)), key).toString('base64') };
  };

  it.each(['bounce-permanent.json', 'open.json', 'subscription-confirmation.json', 'inbound-received.json'])('%s: accepts v1 (SHA1withRSA) and v2 (SHA256withRSA)', (file) => {
    expect(verifySnsSignature(signed(json(file), '1'), publicPem)).toBe(true);
    expect(verifySnsSignature(signed(json(file), '2'), publicPem)).toBe(true);
    expect(verifySnsSignature(signed(json(file), '2'), publicKey)).toBe(true);
  });

  it('rejects a one-byte change, another key, a swapped version and the fixture\'s placeholder signature', () => {
    const good = signed(json('bounce-permanent.json'), '2');
    const message = good.Message as string;
    const at = message.indexOf('5.1.1');
    expect(verifySnsSignature({ ...good, Message: `${message.slice(0, at)}5.1.2${message.slice(at + 5)}` }, publicPem)).toBe(false);
    expect(verifySnsSignature({ ...good, Timestamp: '2026-01-07T14:02:32.392Z' }, publicPem)).toBe(false);
    expect(verifySnsSignature({ ...good, Subject: 'added' }, publicPem)).toBe(false);
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
    expect(verifySnsSignature(good, other)).toBe(false);
    expect(verifySnsSignature({ ...good, SignatureVersion: '1' }, publicPem)).toBe(false);
    expect(verifySnsSignature({ ...good, SignatureVersion: '3' }, publicPem)).toBe(false);
    expect(verifySnsSignature(json('bounce-permanent.json'), publicPem)).toBe(false);
    expect(verifySnsSignature({ ...good, Type: 'Other' }, publicPem)).toBe(false);
  });

  // What production passes: the X.509 certificate PEM fetched from SigningCertURL. Node can't mint
  // certificates, so this one is made with the openssl CLI when it's there.
  const openssl = spawnSync('openssl', ['version']).status === 0;
  it.skipIf(!openssl)('accepts the signing certificate PEM itself', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'sns-cert-'));
    try {
      const keyFile = join(tmp, 'key.pem');
      writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }));
      const made = spawnSync('openssl', ['req', '-new', '-x509', '-key', keyFile, '-subj', '/CN=sns.amazonaws.com', '-days', '1'], { encoding: 'utf8' });
      expect(made.stdout).toContain('BEGIN CERTIFICATE');
      const good = signed(json('delivery.json'), '1');
      expect(verifySnsSignature(good, made.stdout)).toBe(true);
      expect(verifySnsSignature({ ...good, MessageId: 'x' }, made.stdout)).toBe(false);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('SNS URL trust', () => {
  it.each([
    'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem',
    'https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-01d088a6f77103d0fe307c0069e40ed6.pem',
    'https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-3242f6a7a3e4e1a8e2e3c1c9e3a1b2c3.pem',
    'https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem',
  ])('trusts %s', (url) => expect(isTrustedSigningCertUrl(url)).toBe(true));

  it.each([
    'http://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem',
    'https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-x.pem',
    'https://evil.example/sns.us-east-1.amazonaws.com/x.pem',
    'https://s3.amazonaws.com/sns.us-east-1/x.pem',
    'https://mybucket.s3.us-east-1.amazonaws.com/x.pem',
    'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.crt',
    'https://sns.us-east-1.amazonaws.com/x.pem?redirect=https://evil.example/',
    'https://user@sns.us-east-1.amazonaws.com/x.pem',
    'https://sns.us-east-1.amazonaws.com:8443/x.pem',
    'https://sns..amazonaws.com/x.pem',
    'not a url',
    42,
  ])('refuses %s', (url) => expect(isTrustedSigningCertUrl(url)).toBe(false));

  it('checks SubscribeURL hosts the same way', () => {
    expect(isTrustedSubscribeUrl(json('subscription-confirmation.json').SubscribeURL)).toBe(true);
    expect(isTrustedSubscribeUrl('https://evil.example/?Action=ConfirmSubscription')).toBe(false);
  });
});

describe('SES inbound (receipt rule SNS action)', () => {
  it('decodes the base64 content into the raw message', async () => {
    const raw = providers.ses.inboundToRaw(json('inbound-received.json'));
    expect(raw).not.toBeNull();
    const mail = await parseInboundMail(raw!);
    expect(mail.inReplyTo).toBe(HARBOR);
    expect(mail.messageId).toBe('reply-20260108120000@harborline.io');
    expect(mail.text).toContain('Wir freuen uns!');
  });

  it('takes UTF-8 content as is and returns null without content', () => {
    const message = JSON.parse(json('inbound-received.json').Message as string) as Record<string, unknown>;
    const receipt = message.receipt as Record<string, unknown>;
    const utf8 = { ...message, content: 'From: a@b.example\r\n\r\nhi', receipt: { ...receipt, action: { type: 'SNS', encoding: 'UTF-8' } } };
    expect(sesInboundToRaw(utf8)).toBe('From: a@b.example\r\n\r\nhi');
    expect(sesInboundToRaw({ ...message, content: undefined })).toBeNull();
    expect(sesInboundToRaw(JSON.parse(json('delivery.json').Message as string))).toBeNull();
  });
});
