// ESP webhooks through the real HTTP API: signed provider events land as signals on the right lead;
// a forged or unconfigured provider is refused and changes nothing.
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { and, eq, like, or, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activity, enrollments, leads, messages, signals, suppressions } from '../../src/db/schema.js';
import { mailgunSignature, snsStringToSign } from '../../src/engagement/providers/index.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

const MAILGUN_KEY = 'key-3ax6xnjp29jd6fds4gc373sgvjxteol0';
const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const SES_TOPIC = 'arn:aws:sns:us-east-1:123456789012:nurture-ses-events';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const fixture = (p: string) => JSON.parse(readFileSync(`test/fixtures/providers/${p}`, 'utf8'));

// A local server stands in for SNS: the SubscribeURL stays an Amazon URL (that check stays on), and
// the injected fetch carries it here. eu-west-1 goes to a port nobody listens on: SNS unreachable.
const snsHits: string[] = [];
let sns: Server;
let snsUrl = '';
let deadUrl = '';
async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

let h: Harness;
beforeAll(async () => {
  sns = createServer((req, res) => {
    snsHits.push(req.url ?? '');
    const topic = new URL(req.url ?? '/', 'http://x').searchParams.get('TopicArn');
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end(`<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><ConfirmSubscriptionResult><SubscriptionArn>${topic}:7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>`);
  });
  snsUrl = await listen(sns);
  const dead = createServer();
  deadUrl = await listen(dead);
  await new Promise((resolve) => dead.close(resolve));
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
        snsFetch: (url, init) => fetch(url.replace('https://sns.us-east-1.amazonaws.com', snsUrl).replace('https://sns.eu-west-1.amazonaws.com', deadUrl), init),
        // As if SMTP_URL were smtp.sendgrid.net: every message carries X-SMTPAPI unique_args.
        relay: 'sendgrid',
      },
    },
  });
});
afterAll(async () => {
  await h?.close();
  await new Promise((resolve) => sns?.close(resolve));
});

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

function signedSendgrid(events: unknown[]) {
  const body = JSON.stringify(events);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = sign('sha256', Buffer.concat([Buffer.from(timestamp), Buffer.from(body)]), privateKey).toString('base64');
  return postJson('/v1/providers/sendgrid/events', body, { 'x-twilio-email-event-webhook-signature': signature, 'x-twilio-email-event-webhook-timestamp': timestamp });
}

/** A lead with its first message sent; returns the lead, the message row and the X-SMTPAPI it carried. */
async function sentMessage(email: string) {
  const messageId = await leadWithMail(email);
  const [lead] = await h.ctx.db.select().from(leads).where(eq(leads.email, email));
  const msg = await eventually(`message to ${email} sent`, async () => (await h.ctx.db.select().from(messages).where(and(eq(messages.messageId, messageId), eq(messages.status, 'sent'))))[0]);
  const mail = h.smtp.mails.find((m) => m.parsed.messageId?.includes(messageId))!;
  // The header as it went over the wire (unfolded), not as a mail parser decodes it.
  const smtpapi = /^X-SMTPAPI: (.*(?:\r\n[ \t].*)*)$/im.exec(mail.raw)?.[1]?.replace(/\r\n[ \t]/g, ' ');
  return { lead: lead!, msg, smtpapi };
}

const sg = (over: Record<string, unknown>) => ({ timestamp: Math.floor(Date.now() / 1000), category: ['nurture'], ...over });

describe('provider events attach to the exact message', () => {
  it('matches SendGrid events by our custom argument, then by the sg_message_id it taught us, though the address got two messages', async () => {
    const { lead, msg, smtpapi } = await sentMessage('two@northwind.test');
    // Outgoing mail names its row for SendGrid.
    expect(JSON.parse(smtpapi!)).toEqual({ unique_args: { nurture_message: msg.id } });
    // An earlier message to the same address, so the address alone can't tell them apart.
    const earlierId = randomUUID();
    await h.ctx.db.insert(messages).values({ id: earlierId, enrollmentId: msg.enrollmentId, leadId: lead.id, sequenceId: msg.sequenceId, stepId: 'an-earlier-step', messageId: `${earlierId}@nurture.test`, templateName: msg.templateName, toAddress: msg.toAddress, status: 'sent', sentAt: new Date(Date.now() - 86_400_000) });

    const sgId = 'Tq8wZ3nB5xRk2mLp7vC4dE';
    const delivered = sg({ event: 'delivered', email: 'two@northwind.test', sg_event_id: `d-${sgId}`, sg_message_id: `${sgId}.recvd-7c9d8e6f5-m3x8p-1-695C1E00-4.0`, response: '250 2.0.0 OK', nurture_message: msg.id });
    // The earlier one's delivery in the same batch: each message learns its own id.
    const earlierSgId = 'Hn3kV8pQ1wXy6tRb9mZs2A';
    const deliveredEarlier = sg({ event: 'delivered', email: 'two@northwind.test', sg_event_id: `d-${earlierSgId}`, sg_message_id: `${earlierSgId}.recvd-7c9d8e6f5-m3x8p-1-695C1DF0-2.0`, response: '250 2.0.0 OK', nurture_message: earlierId });
    const r1 = await signedSendgrid([delivered, deliveredEarlier]);
    expect(r1.status).toBe(200);
    expect(await r1.json()).toMatchObject({ matched: { custom_arg: 2 }, logged: 2 });
    expect((await h.ctx.db.select().from(messages).where(eq(messages.id, msg.id)))[0]!.providerMessageId).toBe(sgId);
    expect((await h.ctx.db.select().from(messages).where(eq(messages.id, earlierId)))[0]!.providerMessageId).toBe(earlierSgId);

    // No custom argument and no Message-ID: only SendGrid's own id, with another per-recipient suffix.
    const open = sg({ event: 'open', email: 'two@northwind.test', sg_event_id: `o-${sgId}`, sg_message_id: `${sgId}.filterdrecv-5bd8b6b5c5-2nq6v-1-695C1E10-2.0`, useragent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15', ip: '203.0.113.45' });
    // Nothing but the address: recorded against the lead, and said so.
    const unsubscribeGroup = sg({ event: 'group_resubscribe', email: 'two@northwind.test', sg_event_id: `g-${sgId}` });
    const click = sg({ event: 'click', email: 'two@northwind.test', sg_event_id: `c-${sgId}`, url: 'https://nurture.example/x', useragent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15', ip: '203.0.113.45' });
    const r2 = await signedSendgrid([open, unsubscribeGroup, click]);
    expect(await r2.json()).toMatchObject({ recorded: 2, matched: { provider_message_id: 1, address: 1 } });
    const [o] = await h.ctx.db.select().from(signals).where(eq(signals.sourceId, `sendgrid-sendgrid:o-${sgId}`));
    expect(o).toMatchObject({ messageId: msg.id, leadId: lead.id });
    expect(o!.evidence).toMatchObject({ match: 'provider_message_id', provider: 'sendgrid' });
    const [c] = await h.ctx.db.select().from(signals).where(eq(signals.sourceId, `sendgrid-sendgrid:c-${sgId}`));
    expect(c).toMatchObject({ messageId: null, leadId: lead.id });
    expect(c!.evidence).toMatchObject({ match: 'address' });
    expect(await h.ctx.db.select().from(signals).where(eq(signals.messageId, earlierId))).toHaveLength(0);
  });

  it('suppresses an address SendGrid dropped as bounced, unsubscribed or reported as spam', async () => {
    const cases = [
      ['dropped-bounced@northwind.test', 'Bounced Address', 'bounced'],
      ['dropped-unsub@northwind.test', 'Unsubscribed Address', 'unsubscribed'],
      ['dropped-spam@northwind.test', 'Spam Reporting Address', 'complained'],
    ] as const;
    const sent = await Promise.all(cases.map(([email]) => sentMessage(email)));
    const events = cases.map(([email, reason], i) => sg({ event: 'dropped', email, reason, status: '5.0.0', sg_event_id: `drop-${i}-${sent[i]!.msg.id}`, sg_message_id: `Dr0p${i}xYzAbCdEfGhIjKlMn.filterdrecv-1`, nurture_message: sent[i]!.msg.id }));
    // A drop for the message's content says nothing about the address.
    const content = await sentMessage('dropped-content@northwind.test');
    events.push(sg({ event: 'dropped', email: 'dropped-content@northwind.test', reason: 'Spam Content (if spam checker app enabled)', sg_event_id: `drop-c-${content.msg.id}`, nurture_message: content.msg.id }));
    const res = await signedSendgrid(events);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ recorded: 3, logged: 1, unmatched: 0 });
    for (const [email, , status] of cases) {
      expect((await h.ctx.db.select().from(leads).where(eq(leads.email, email)))[0]!.status).toBe(status);
      expect(await h.ctx.db.select().from(suppressions).where(eq(suppressions.email, email))).toHaveLength(1);
    }
    expect((await h.ctx.db.select().from(leads).where(eq(leads.email, 'dropped-content@northwind.test')))[0]!.status).toBe('active');
    expect(await h.ctx.db.select().from(suppressions).where(eq(suppressions.email, 'dropped-content@northwind.test'))).toHaveLength(0);
  });

  it('changes nothing, the log included, when the same events are delivered again', async () => {
    const { lead, msg } = await sentMessage('again@northwind.test');
    const id = 'Ag4inRedeliveredXyZ12a';
    const events = [
      sg({ event: 'delivered', email: 'again@northwind.test', sg_event_id: `a1-${id}`, sg_message_id: `${id}.recvd-1`, nurture_message: msg.id }),
      sg({ event: 'deferred', email: 'again@northwind.test', sg_event_id: `a2-${id}`, sg_message_id: `${id}.recvd-1`, response: '421 4.7.0 Try again later', nurture_message: msg.id }),
      sg({ event: 'open', email: 'again@northwind.test', sg_event_id: `a3-${id}`, sg_message_id: `${id}.recvd-1`, sg_machine_open: true, useragent: 'Mozilla/5.0', ip: '17.58.101.12', nurture_message: msg.id }),
      sg({ event: 'dropped', email: 'again@northwind.test', reason: 'Invalid SMTPAPI header', sg_event_id: `a4-${id}`, nurture_message: msg.id }),
      sg({ event: 'spamreport', email: 'again@northwind.test', sg_event_id: `a5-${id}`, sg_message_id: `${id}.recvd-1`, nurture_message: msg.id }),
    ];
    const ours = () =>
      h.ctx.db
        .select({ n: sql<number>`count(*)::int` })
        .from(activity)
        .where(and(eq(activity.leadId, lead.id), or(like(activity.kind, 'esp_%'), sql`${activity.data}->>'sourceId' like 'sendgrid-%'`)));
    const first = await signedSendgrid(events);
    expect(await first.json()).toMatchObject({ recorded: 2, logged: 3 });
    const [afterFirst] = await ours();
    const signalsAfterFirst = await h.ctx.db.select().from(signals).where(eq(signals.leadId, lead.id));
    const leadAfterFirst = (await h.ctx.db.select().from(leads).where(eq(leads.id, lead.id)))[0]!;
    expect(afterFirst!.n).toBe(5);
    expect(leadAfterFirst.status).toBe('complained');

    const again = await signedSendgrid(events);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ recorded: 0, logged: 0, duplicates: 5 });
    expect((await ours())[0]!.n).toBe(5);
    expect(await h.ctx.db.select().from(signals).where(eq(signals.leadId, lead.id))).toEqual(signalsAfterFirst);
    expect((await h.ctx.db.select().from(leads).where(eq(leads.id, lead.id)))[0]!).toEqual(leadAfterFirst);
  });
});

describe('provider-tracked hits are judged like ours', () => {
  it("never counts a scanner walking a message's links through SendGrid's click tracking", async () => {
    const sent = await sentMessage('walked@northwind.test');
    const { lead } = sent;
    // A message of three links (the intro has one): what a scanner walks.
    const links = ['guide', 'checklist', 'webinar'].map((id) => ({ id, url: `https://handrail.example/${id}`, tag: null }));
    const [msg] = await h.ctx.db.update(messages).set({ links }).where(eq(messages.id, sent.msg.id)).returning();
    if (!msg) throw new Error('message row vanished');
    const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
    const start = Math.floor(Date.now() / 1000) + 120;
    // Each click alone is a browser two minutes after delivery; together they walk every link, a second apart,
    // reported one webhook call each.
    for (const [i, link] of msg.links.entries()) {
      const click = sg({ event: 'click', timestamp: start + i, email: 'walked@northwind.test', sg_event_id: `walk-${i}-${msg.id}`, url: link.url, useragent: CHROME, ip: '198.51.100.77', nurture_message: msg.id });
      expect((await signedSendgrid([click])).status).toBe(200);
    }
    const settled = await eventually(
      'the walk settled',
      async () => {
        const rows = await h.ctx.db.select().from(signals).where(and(eq(signals.messageId, msg.id), eq(signals.kind, 'click')));
        return rows.length === msg.links.length && rows.every((r) => r.settledAt) ? rows : null;
      },
      h.settleMs + 30_000,
    );
    expect(settled.every((r) => !r.human && r.reason === 'link_burst')).toBe(true);
    const [after] = await h.ctx.db.select().from(leads).where(eq(leads.id, lead.id));
    expect(after).toMatchObject({ scoreBase: 0, valuePieces: [] });
  });
});

describe('SES subscription confirmation', () => {
  const confirmation = (topic: string, subscribeHost = 'sns.us-east-1.amazonaws.com') => {
    const env = fixture('ses/subscription-confirmation.json');
    env.TopicArn = topic;
    env.MessageId = randomUUID();
    env.Timestamp = new Date().toISOString();
    env.SubscribeURL = `https://${subscribeHost}/?Action=ConfirmSubscription&TopicArn=${topic}&Token=${env.Token}`;
    env.Signature = sign('sha256', Buffer.from(snsStringToSign(env)), rsa.privateKey).toString('base64');
    return env;
  };
  const sesLog = (kind: string) => h.ctx.db.select().from(activity).where(eq(activity.kind, kind));

  it('confirms a subscription to an allowed topic by visiting its SubscribeURL, once', async () => {
    const env = confirmation(SES_TOPIC);
    const res = await postJson('/v1/providers/ses/events', env, { 'content-type': 'text/plain; charset=UTF-8' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ confirmed: true, topicArn: SES_TOPIC, subscriptionArn: `${SES_TOPIC}:7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f` });
    expect(snsHits).toHaveLength(1);
    expect(snsHits[0]).toContain(`Token=${env.Token}`);
    // SNS redelivers it: answered as before, SNS not asked again, no second log line.
    const again = await postJson('/v1/providers/ses/events', env);
    expect(await again.json()).toMatchObject({ confirmed: true, duplicate: true });
    expect(snsHits).toHaveLength(1);
    expect(await sesLog('esp_subscription')).toHaveLength(1);
  });

  it('refuses a confirmation for a topic that is not ours, without visiting it', async () => {
    const res = await postJson('/v1/providers/ses/events', confirmation('arn:aws:sns:us-east-1:999999999999:someone-else'));
    expect(res.status).toBe(401);
    expect(snsHits).toHaveLength(1);
  });

  it('answers a clear retryable error, and logs why, when the SubscribeURL cannot be reached', async () => {
    const res = await postJson('/v1/providers/ses/events', confirmation(SES_TOPIC, 'sns.eu-west-1.amazonaws.com'));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('60');
    const body = await res.json();
    expect(body.error.code).toBe('subscription_confirm_failed');
    expect(body.error.message).toMatch(/could not confirm the SNS subscription to arn:aws:sns:us-east-1:123456789012:nurture-ses-events: could not reach sns\.eu-west-1\.amazonaws\.com/);
    const [line] = await sesLog('esp_subscription_failed');
    expect(line!.detail).toContain('could not reach sns.eu-west-1.amazonaws.com');
  });
});
