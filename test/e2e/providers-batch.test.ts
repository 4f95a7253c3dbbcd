// A provider batch carrying many events on one message: each is judged against the message's hits
// before it, those earlier in the same batch included, exactly as when the events come one POST each.
import { generateKeyPairSync, sign } from 'node:crypto';
import { and, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { rememberProviderMessageIds } from '../../src/db/providerEvents.js';
import { accounts, enrollments, leads, messages, signals } from '../../src/db/schema.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15';
const APPLE_PROXY = 'Mozilla/5.0';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    configDir: 'test/fixtures/config/e2e',
    settings: {
      providers: {
        sendgridPublicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
        postmarkUser: null,
        postmarkPassword: null,
        mailgunSigningKey: null,
        sesTopicArns: [],
        // As if SMTP_URL were smtp.sendgrid.net: every message carries X-SMTPAPI unique_args.
        relay: 'sendgrid',
      },
    },
  });
});
afterAll(async () => {
  await h?.close();
});

async function signedSendgrid(events: unknown[]) {
  const body = JSON.stringify(events);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = sign('sha256', Buffer.concat([Buffer.from(timestamp), Buffer.from(body)]), privateKey).toString('base64');
  const res = await fetch(`${h.http.url}/v1/providers/sendgrid/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-twilio-email-event-webhook-signature': signature, 'x-twilio-email-event-webhook-timestamp': timestamp },
    body,
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { recorded: number; duplicates: number };
}

/** A lead with its first message sent, the message given three links (what a scanner walks). */
async function sentMessage(email: string) {
  await h.post('/v1/triggers', { type: 'lead.upsert', lead: { email, firstName: 'Dana', persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Northwind', domain: 'northwind.test' } } });
  const mail = await eventually(`mail to ${email}`, async () => h.smtp.mails.find((m) => m.envelopeTo.includes(email)));
  const messageId = mail.parsed.messageId!.replace(/[<>]/g, '');
  const sent = await eventually(`message to ${email} sent`, async () => (await h.ctx.db.select().from(messages).where(and(eq(messages.messageId, messageId), eq(messages.status, 'sent'))))[0]);
  const links = ['guide', 'checklist', 'webinar'].map((id) => ({ id, url: `https://handrail.example/${id}`, tag: null }));
  const [msg] = await h.ctx.db.update(messages).set({ links }).where(eq(messages.id, sent.id)).returning();
  return msg!;
}

/**
 * One message's events: Apple's proxy opening it again and again, a scanner walking its three links a
 * second apart and fetching the pixel as it renders, and, ten minutes on, a person reading and clicking.
 * Two minutes after sending (past the floors) and in the future, so nothing settles while the test runs.
 */
function eventsFor(msg: { id: string; toAddress: string }, tag: string, start: number) {
  const e = (n: number, over: Record<string, unknown>) => ({ email: msg.toAddress, category: ['nurture'], sg_event_id: `${tag}-${n}`, nurture_message: msg.id, ...over });
  const scanner = '198.51.100.77';
  return [
    ...Array.from({ length: 20 }, (_, i) => e(i, { event: 'open', timestamp: start - 30 + i, sg_machine_open: true, useragent: APPLE_PROXY, ip: `17.58.63.${i + 1}` })),
    e(20, { event: 'click', timestamp: start, url: 'https://handrail.example/guide', useragent: CHROME, ip: scanner }),
    e(21, { event: 'click', timestamp: start + 1, url: 'https://handrail.example/checklist', useragent: CHROME, ip: scanner }),
    e(22, { event: 'click', timestamp: start + 2, url: 'https://handrail.example/webinar', useragent: CHROME, ip: scanner }),
    e(23, { event: 'open', timestamp: start + 3, useragent: CHROME, ip: scanner }),
    e(24, { event: 'click', timestamp: start + 4, url: 'https://handrail.example/guide', useragent: CHROME, ip: scanner }),
    e(25, { event: 'open', timestamp: start + 600, useragent: SAFARI, ip: '203.0.113.45' }),
    e(26, { event: 'click', timestamp: start + 601, url: 'https://handrail.example/guide', useragent: SAFARI, ip: '203.0.113.45' }),
  ];
}

async function verdicts(tag: string, count: number) {
  const rows = await h.ctx.db
    .select()
    .from(signals)
    .where(inArray(signals.sourceId, Array.from({ length: count }, (_, n) => `sendgrid-sendgrid:${tag}-${n}`)));
  const byN = new Map(rows.map((r) => [Number(r.sourceId.split('-').at(-1)), r]));
  return Array.from({ length: count }, (_, n) => {
    const r = byN.get(n);
    if (!r) throw new Error(`no signal for ${tag}-${n}`);
    const ev = r.evidence as { verdict?: unknown; providerMachineOpen?: boolean };
    return { n, kind: r.kind, linkId: r.linkId, human: r.human, reason: r.reason, provisional: r.settledAt === null, verdict: ev.verdict ?? null, providerMachineOpen: ev.providerMachineOpen ?? false };
  });
}

describe('a provider batch with many events on one message', () => {
  it('judges each event against the ones before it, in the batch too, as if they had come one by one', async () => {
    const batched = await sentMessage('batched@northwind.test');
    const single = await sentMessage('single@northwind.test');
    const start = Math.floor(Date.now() / 1000) + 120;
    const inOne = eventsFor(batched, 'b', start);
    const oneByOne = eventsFor(single, 's', start);

    expect(await signedSendgrid(inOne)).toMatchObject({ recorded: inOne.length, duplicates: 0 });
    for (const ev of oneByOne) expect(await signedSendgrid([ev])).toMatchObject({ recorded: 1 });

    const b = await verdicts('b', inOne.length);
    const s = await verdicts('s', oneByOne.length);
    expect(b).toEqual(s);
    // What that takes: Apple's opens by the provider's flag; the third link in three seconds completes a
    // walk (and takes back the two clicks before it); the pixel it fetched with the walk is its render, as
    // is a click following the walk; the person ten minutes later looks human and waits to settle.
    expect(b.slice(0, 20).every((v) => !v.human && v.reason === 'apple_mpp' && v.providerMachineOpen)).toBe(true);
    expect(b.slice(20, 23).map((v) => [v.linkId, v.human, v.reason])).toEqual([
      ['guide', false, 'link_burst'],
      ['checklist', false, 'link_burst'],
      ['webinar', false, 'link_burst'],
    ]);
    expect(b[23]).toMatchObject({ kind: 'open', human: false, reason: 'gateway_render' });
    expect(b[24]).toMatchObject({ kind: 'click', linkId: 'guide', human: false });
    expect(b.slice(25).map((v) => [v.kind, v.human, v.provisional])).toEqual([
      ['open', true, true],
      ['click', true, true],
    ]);

    // Redelivered whole: nothing recorded twice, and the lead moved by none of it yet.
    expect(await signedSendgrid(inOne)).toMatchObject({ recorded: 0, duplicates: inOne.length });
    const [lead] = await h.ctx.db.select().from(leads).where(eq(leads.id, batched.leadId));
    expect(lead).toMatchObject({ scoreBase: 0, valuePieces: [] });
  });

  it('learns provider ids for two batches naming the same messages in opposite orders, neither waiting on a row another holds', async () => {
    const [acc] = await h.ctx.db.insert(accounts).values({ key: 'teach.test', name: 'Teach Co' }).returning();
    const [lead] = await h.ctx.db.insert(leads).values({ accountId: acc!.id, email: 'ops@teach.test', persona: 'champion', stage: 'awareness' }).returning();
    const [run] = await h.ctx.db.insert(enrollments).values({ leadId: lead!.id, sequenceId: 'teach', sequenceVersion: 'v', state: 'completed', stageEnteredAt: new Date() }).returning();
    const rows = await h.ctx.db
      .insert(messages)
      .values(Array.from({ length: 7 }, (_, i) => ({ enrollmentId: run!.id, leadId: lead!.id, sequenceId: 'teach', stepId: `s${i}`, messageId: `teach-${i}@nurture.test`, templateName: 't', toAddress: 'ops@teach.test', status: 'sent' })))
      .returning({ id: messages.id });
    const ids = rows.map((r) => r.id).sort();
    const pairs = ids.map((id, i) => ({ messageRowId: id, providerMessageId: `sg-${i}` }));
    // A send marking the middle one sent holds its row meanwhile; one batch names the messages in id
    // order, the other in reverse (a processed batch and a delivered batch landing together).
    const middle = ids[3]!;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let holding!: () => void;
    const held = new Promise<void>((r) => (holding = r));
    const holder = h.ctx.db.transaction(async (tx) => {
      await tx.execute(sql`select id from messages where id = ${middle} for no key update`);
      holding();
      await released;
    });
    await held;
    const both = Promise.allSettled([rememberProviderMessageIds(h.ctx.db, pairs), rememberProviderMessageIds(h.ctx.db, [...pairs].reverse())]);
    // Either both finish while the row is held, or both wait for it: then let it go and see what they do.
    const waiting = eventually('both batches done or waiting on the held row', async () => {
      const [w] = await h.ctx.db.execute<{ n: number }>(sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`);
      return w!.n >= 2 ? true : null;
    });
    await Promise.race([both, waiting]);
    release();
    await holder;
    const outcomes = await both;
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled']);
    const learnt = await h.ctx.db.select({ id: messages.id, providerMessageId: messages.providerMessageId }).from(messages).where(inArray(messages.id, ids));
    const byId = new Map(learnt.map((m) => [m.id, m.providerMessageId]));
    // Every message but the held one learnt its id; the held one is left to a later event.
    expect(ids.map((id) => byId.get(id))).toEqual(ids.map((id, i) => (id === middle ? null : `sg-${i}`)));
  });
});
