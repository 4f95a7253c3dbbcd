// ESP webhooks through the real HTTP API: signed provider events land as signals on the right lead;
// a forged or unconfigured provider is refused and changes nothing.
import { generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollments, leads, signals, suppressions } from '../../src/db/schema.js';
import { mailgunSignature, snsStringToSign } from '../../src/engagement/providers/index.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

const MAILGUN_KEY = 'key-3ax6xnjp29jd6fds4gc373sgvjxteol0';
const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const SES_TOPIC = 'arn:aws:sns:us-east-1:123456789012:nurture-ses-events';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const fixture = (p: string) => JSON.parse(readFileSync(`test/fixtures/providers/${p}`, 'utf8'));

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    configDir: 'test/fixtures/config/e2e',
    settings: {
      providers: {
        sendgridPublicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
        postmarkUser: 'nurture',
        postmarkPassword: 'correct horse battery staple',
        mailgunSigningKey: MAILGUN_KEY,
        sesTopicArns: [SES_TOPIC],
        // The signing certificate is fetched from Amazon in production; here the test's own key stands in.
        snsCertificate: async () => rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      },
    },
  });
});
afterAll(async () => h?.close());

async function leadWithMail(email: string) {
  await h.post('/v1/triggers', { type: 'lead.upsert', lead: { email, firstName: 'Dana', persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Northwind', domain: 'northwind.test' } } });
  const mail = await eventually(`mail to ${email}`, async () => h.smtp.mails.find((m) => m.envelopeTo.includes(email)));
  return mail.parsed.messageId!.replace(/[<>]/g, '');
}

function mailgunBody(messageId: string, email: string, opts: { key?: string; event?: string } = {}) {
  const body = fixture('mailgun/failed-permanent.json');
  const timestamp = String(Math.floor(Date.now() / 1000));
  const token = `tok${Date.now()}${Math.random()}`;
  body.signature = { timestamp, token, signature: mailgunSignature(opts.key ?? MAILGUN_KEY, timestamp, token) };
  body['event-data'].timestamp = Number(timestamp);
  body['event-data'].recipient = email;
  body['event-data'].envelope.targets = email;
  body['event-data'].message.headers['message-id'] = messageId;
  body['event-data'].message.headers.to = email;
  return body;
}
const postJson = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${h.http.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

describe('ESP webhooks', () => {
  it('refuses a forged Mailgun webhook and changes nothing', async () => {
    const id = await leadWithMail('forged@northwind.test');
    const res = await postJson('/v1/providers/mailgun/events', mailgunBody(id, 'forged@northwind.test', { key: 'key-not-the-real-one-at-all' }));
    expect(res.status).toBe(401);
    expect((await res.json()).error.code).toBe('bad_signature');
    expect(await h.ctx.db.select().from(signals)).toHaveLength(0);
    const [lead] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'forged@northwind.test'));
    expect(lead!.status).toBe('active');
  });

  it('records a signed Mailgun permanent failure as a hard bounce that suppresses the address', async () => {
    const id = await leadWithMail('gone@northwind.test');
    const res = await postJson('/v1/providers/mailgun/events', mailgunBody(id, 'gone@northwind.test'));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ recorded: 1, unmatched: 0 });
    const [lead] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'gone@northwind.test'));
    expect(lead!.status).toBe('bounced');
    expect(await h.ctx.db.select().from(suppressions).where(eq(suppressions.email, 'gone@northwind.test'))).toHaveLength(1);
    const runs = await h.ctx.db.select().from(enrollments).where(eq(enrollments.leadId, lead!.id));
    expect(runs.every((r) => r.state === 'exited' && r.exitReason === 'bounced')).toBe(true);
  });

  it('classifies SendGrid opens and clicks from a signed batch, matched by our Message-ID', async () => {
    const id = await leadWithMail('dana@northwind.test');
    const at = Math.floor(Date.now() / 1000) + 120;
    const events = fixture('sendgrid/events.json')
      .filter((e: { event: string }) => e.event === 'open' || e.event === 'click')
      .map((e: Record<string, unknown>) => ({ ...e, email: 'dana@northwind.test', timestamp: at, nurture_message_id: id, sg_event_id: `${e.sg_event_id}-${at}` }));
    const body = JSON.stringify(events);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = sign('sha256', Buffer.concat([Buffer.from(timestamp), Buffer.from(body)]), privateKey).toString('base64');
    const headers = { 'x-twilio-email-event-webhook-signature': signature, 'x-twilio-email-event-webhook-timestamp': timestamp };
    const tampered = await postJson('/v1/providers/sendgrid/events', body.replace('dana@', 'dane@'), headers);
    expect(tampered.status).toBe(401);
    const res = await postJson('/v1/providers/sendgrid/events', body, headers);
    expect(res.status).toBe(200);
    // Redelivered: recorded once.
    expect(await (await postJson('/v1/providers/sendgrid/events', body, headers)).json()).toMatchObject({ recorded: 0, duplicates: 2 });
    const rows = await h.ctx.db.select().from(signals).where(eq(signals.kind, 'open'));
    expect(rows.some((s) => s.human)).toBe(true);
    expect((await h.ctx.db.select().from(signals).where(eq(signals.kind, 'click'))).length).toBeGreaterThanOrEqual(1);
  });

  it('takes a Postmark inbound reply with basic auth and stops the one-to-one sequence', async () => {
    const id = await leadWithMail('reply@northwind.test');
    const inbound = fixture('postmark/inbound.json');
    inbound.From = 'reply@northwind.test';
    inbound.FromFull.Email = 'reply@northwind.test';
    inbound.Date = new Date().toUTCString();
    inbound.Headers = inbound.Headers.map((x: { Name: string; Value: string }) => (x.Name === 'In-Reply-To' || x.Name === 'References' ? { ...x, Value: `<${id}>` } : x));
    const auth = (pass: string) => ({ authorization: `Basic ${Buffer.from(`nurture:${pass}`).toString('base64')}` });
    expect((await postJson('/v1/providers/postmark/inbound', inbound, auth('wrong'))).status).toBe(401);
    const res = await postJson('/v1/providers/postmark/inbound', inbound, auth('correct horse battery staple'));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ matched: true, kind: 'reply', recorded: true });
    const [lead] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'reply@northwind.test'));
    const runs = await h.ctx.db.select().from(enrollments).where(eq(enrollments.leadId, lead!.id));
    expect(runs.find((r) => r.sequenceId === 'awareness-notes')).toMatchObject({ state: 'exited', exitReason: 'replied' });
  });

  it('takes SES bounces only from the configured SNS topic, signed, and fresh', async () => {
    const id = await leadWithMail('ses@northwind.test');
    const envelope = (topic: string, at = new Date()) => {
      const env = fixture('ses/bounce-permanent.json');
      const message = JSON.parse(env.Message);
      message.bounce.bouncedRecipients[0].emailAddress = 'ses@northwind.test';
      message.mail.destination = ['ses@northwind.test'];
      message.mail.headers = message.mail.headers.map((x: { name: string; value: string }) => (x.name === 'Message-ID' ? { ...x, value: `<${id}>` } : x));
      message.mail.commonHeaders = { ...message.mail.commonHeaders, messageId: `<${id}>` };
      env.Message = JSON.stringify(message);
      env.TopicArn = topic;
      env.Timestamp = at.toISOString();
      env.MessageId = `${topic.length}-${at.getTime()}`;
      env.Signature = sign('sha1', Buffer.from(snsStringToSign(env)), rsa.privateKey).toString('base64');
      return env;
    };
    // Someone else's topic, signed by SNS all the same: refused.
    const foreign = await postJson('/v1/providers/ses/events', envelope('arn:aws:sns:us-east-1:999999999999:attacker'), { 'content-type': 'text/plain' });
    expect(foreign.status).toBe(401);
    const stale = await postJson('/v1/providers/ses/events', envelope(SES_TOPIC, new Date(Date.now() - 3 * 3600_000)));
    expect(stale.status).toBe(401);
    const forged = { ...envelope(SES_TOPIC), Signature: envelope('arn:aws:sns:us-east-1:123456789012:other').Signature };
    expect((await postJson('/v1/providers/ses/events', forged)).status).toBe(401);
    expect((await h.ctx.db.select().from(leads).where(eq(leads.email, 'ses@northwind.test')))[0]!.status).toBe('active');

    const ok = await postJson('/v1/providers/ses/events', envelope(SES_TOPIC), { 'content-type': 'text/plain; charset=UTF-8' });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ recorded: 1 });
    expect((await h.ctx.db.select().from(leads).where(eq(leads.email, 'ses@northwind.test')))[0]!.status).toBe('bounced');
  });

  it('refuses providers that are unknown or not configured', async () => {
    expect((await postJson('/v1/providers/sparkpost/events', [])).status).toBe(404);
    const ses = await postJson('/v1/providers/ses/events', { Type: 'Notification', TopicArn: SES_TOPIC, Timestamp: new Date().toISOString(), SigningCertURL: 'https://evil.example/cert.pem', Message: '{}', SignatureVersion: '1', Signature: 'x' });
    expect(ses.status).toBe(401);
  });
});
