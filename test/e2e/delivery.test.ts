// Delivery through real Redis, Postgres and SMTP: a greylisting relay delivers once after its 451s, one
// that never recovers ends the message failed, a rate limit defers (never drops) a burst, every message
// from a domain with a key is DKIM-signed and verifies, policy blocks suppress only on repeat, and an
// uncertain send waits for a person's decision.
import { generateKeyPairSync } from 'node:crypto';
import { and, eq, inArray, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accounts, activity, leads, messages, signals, suppressions } from '../../src/db/schema.js';
import { sendRows } from '../../src/db/sendRows.js';
import { createTransport } from '../../src/mail/transport.js';
import { sendJobId } from '../../src/queue/index.js';
import { listMessages, releaseUncertain } from '../../src/usecases/messages.js';
import { messagesList } from '../../src/cli/messages.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { failFirst, startFaultySmtp, verifyDkim, type FaultySmtp } from '../support/smtp-faults.js';

const dkimKey = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
let h: Harness;
let relay: FaultySmtp;

beforeAll(async () => {
  // funnel.yaml names the key as env:NURTURE_TEST_DKIM_KEY.
  process.env.NURTURE_TEST_DKIM_KEY = dkimKey.privateKey;
  relay = await startFaultySmtp();
  h = await startHarness({ configDir: 'test/fixtures/config/delivery' });
  // Every send in this file goes through the relay that misbehaves on cue.
  const original = h.ctx.transport;
  h.ctx.transport = createTransport(relay.url);
  original?.close();
});
afterAll(async () => {
  await h?.close();
  await relay?.close();
  delete process.env.NURTURE_TEST_DKIM_KEY;
});

const upsert = async (email: string, persona: 'champion' | 'end_user' = 'end_user') => {
  const r = await h.post('/v1/triggers', {
    type: 'lead.upsert',
    lead: { email, firstName: email.split('@')[0], persona, owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Acme', domain: 'acme.test' } },
  });
  expect(r.status).toBe(200);
};
const mailsTo = (email: string) => relay.mails.filter((m) => m.envelopeTo.includes(email));
const rowsTo = (email: string) => h.ctx.db.select().from(messages).where(eq(messages.toAddress, email)).orderBy(messages.queuedAt);

/** Backoff is BullMQ's (seconds, growing): run a waiting retry now instead of sleeping through it. */
async function promoteRetries(email: string): Promise<void> {
  for (const m of await rowsTo(email)) {
    const job = await h.ctx.queues.send.getJob(sendJobId({ messageId: m.id }));
    if (job && (await job.isDelayed())) await job.promote().catch(() => {});
  }
}

describe('delivery', () => {
  it('delivers once through a relay that answers 451 twice, then 250', async () => {
    relay.rcpt = failFirst('grey@acme.test', 2, { code: 451, message: '4.7.1 Greylisted, please try again later' });
    await upsert('grey@acme.test');
    const row = await eventually('sent after two 451s', async () => {
      await promoteRetries('grey@acme.test');
      const [m] = await rowsTo('grey@acme.test');
      return m?.status === 'sent' ? m : null;
    });
    expect(relay.rcptTries.get('grey@acme.test')).toBe(3);
    expect(row.attempts).toBe(3);
    expect(row.relayResponse).toContain('250');
    await new Promise((r) => setTimeout(r, 500));
    expect(mailsTo('grey@acme.test')).toHaveLength(1);
    const retries = await h.ctx.db.select().from(activity).where(and(eq(activity.email, 'grey@acme.test'), eq(activity.kind, 'retry'))).orderBy(activity.id);
    expect(retries.map((r) => r.detail)).toEqual([
      expect.stringMatching(/^will retry in about 1 s \(attempt 1; retries for [78] s more\): 451/),
      expect.stringMatching(/^will retry in about 1 s \(attempt 2; retries for [1-8] s more\): 451/),
    ]);
  });

  it('ends a send failed, with the last reply, once sending.maxRetryAge has run out (not after a number of attempts)', async () => {
    relay.rcpt = (a) => (a === 'never@acme.test' ? { code: 451, message: '4.3.0 Mail server temporarily rejected message' } : null);
    await upsert('never@acme.test');
    const row = await eventually(
      'failed once the retry age ran out',
      async () => {
        await promoteRetries('never@acme.test');
        const [m] = await rowsTo('never@acme.test');
        return m?.status === 'failed' ? m : null;
      },
      40_000,
    );
    expect(row.error).toMatch(/^retry age ran out: still failing ([89]|1\d) s after the first failure, \d+ attempts \(sending\.maxRetryAge 8 s\); last reply: .*451 4\.3\.0 Mail server temporarily rejected message/);
    expect(row.attempts).toBeGreaterThanOrEqual(3);
    expect(relay.rcptTries.get('never@acme.test')).toBe(row.attempts);
    const [failed] = await h.ctx.db.select().from(activity).where(and(eq(activity.email, 'never@acme.test'), eq(activity.kind, 'failed')));
    expect(failed!.detail).toContain('retry age ran out');
    const job = await h.ctx.queues.send.getJob(sendJobId({ messageId: row.id }));
    expect(await job!.getState()).toBe('failed');
    expect(mailsTo('never@acme.test')).toHaveLength(0);
    relay.rcpt = () => null;
  });

  it('defers a burst beyond 5 per second, delivers each message exactly once, every one DKIM-signed', async () => {
    const emails = Array.from({ length: 12 }, (_, i) => `burst${i}@acme.test`);
    // All twelve ready at once: hold the send worker until every message is queued.
    const sender = h.worker('send');
    await sender.pause();
    await Promise.all(emails.map((e) => upsert(e)));
    await eventually('12 queued', async () => (await h.ctx.db.select().from(messages).where(inArray(messages.toAddress, emails))).length === 12);
    sender.resume();
    const rows = await eventually(
      'all 12 sent',
      async () => {
        const r = await h.ctx.db.select().from(messages).where(inArray(messages.toAddress, emails));
        return r.every((m) => m.status === 'sent') ? r : null;
      },
      30_000,
    );
    // Nothing goes out again afterwards.
    await new Promise((r) => setTimeout(r, 1000));
    for (const e of emails) expect(mailsTo(e)).toHaveLength(1);
    // Twelve sends at five a second need at least three one-second windows.
    const seconds = new Set(rows.map((r) => Math.floor(r.sendingAt!.getTime() / 1000)));
    expect(seconds.size).toBeGreaterThanOrEqual(3);
    const deferred = await h.ctx.db.select().from(activity).where(and(eq(activity.kind, 'deferred'), like(activity.email, 'burst%')));
    expect(deferred.length).toBeGreaterThanOrEqual(1);
    for (const d of deferred) expect(d.detail).toMatch(/^deferred until \S+, \w{3} \d\d:\d\d \S+ for the lead \(rate limit handrail\.example 5\/s\)$/);
    // A deferral is neither an attempt nor a failure.
    expect(rows.every((r) => r.attempts === 1 && r.error === null)).toBe(true);
    expect(await h.ctx.db.select().from(activity).where(and(inArray(activity.kind, ['retry', 'failed']), like(activity.email, 'burst%')))).toEqual([]);

    for (const e of emails) {
      const check = verifyDkim(mailsTo(e)[0]!.raw, dkimKey.publicKey);
      expect(check.tags).toMatchObject({ d: 'handrail.example', s: 't2026' });
      expect(check.ok).toBe(true);
    }
  });

  it('suppresses an address only on its second policy block, and its neighbour gets every message', async () => {
    relay.rcpt = (a) => (a === 'blocked@acme.test' ? { code: 550, message: '5.7.1 Message rejected due to local policy' } : null);
    await upsert('blocked@acme.test', 'champion');
    await upsert('neighbour@acme.test', 'champion');
    const first = await eventually('first policy block', async () => {
      const [m] = await rowsTo('blocked@acme.test');
      return m?.status === 'bounced' ? m : null;
    });
    expect(first.relayResponse).toContain('5.7.1');
    const [stillActive] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'blocked@acme.test'));
    // Recorded and counted, but one policy block says nothing final about the person.
    // The signal follows the row's move in its own statement: wait for it, then check it is the only one.
    const softs = await eventually('soft bounce recorded', async () => {
      const rows = await h.ctx.db.select().from(signals).where(and(eq(signals.leadId, stillActive!.id), eq(signals.kind, 'bounce')));
      return rows.length ? rows : null;
    });
    expect(softs.map((s) => s.reason)).toEqual(['soft_bounce']);

    const second = await eventually('second policy block', async () => {
      const rows = await rowsTo('blocked@acme.test');
      return rows.length === 2 && rows[1]!.status === 'bounced' ? rows[1] : null;
    });
    expect(second.stepId).toBe('follow-up');
    // The bounce is recorded (and the address suppressed) just after the row is marked.
    const lead = await eventually('suppressed', async () => {
      const [l] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'blocked@acme.test'));
      return l?.status === 'bounced' ? l : null;
    });
    expect(lead.status).toBe('bounced');
    expect(await h.ctx.db.select().from(suppressions).where(eq(suppressions.email, 'blocked@acme.test'))).toHaveLength(1);
    const log = await h.ctx.db.select().from(activity).where(and(eq(activity.email, 'blocked@acme.test'), eq(activity.kind, 'bounced'))).orderBy(activity.id);
    expect(log.map((l) => l.detail)).toEqual([expect.stringContaining('soft bounce 1 of 2'), expect.stringContaining('address suppressed: 2 soft bounces (last 5.7.1)')]);

    const neighbour = await eventually('neighbour got both notes', async () => {
      const rows = await rowsTo('neighbour@acme.test');
      return rows.length === 2 && rows.every((r) => r.status === 'sent') ? rows : null;
    });
    expect(neighbour.map((r) => r.stepId)).toEqual(['intro', 'follow-up']);
    expect(mailsTo('neighbour@acme.test')).toHaveLength(2);
    expect(mailsTo('blocked@acme.test')).toHaveLength(0);
    relay.rcpt = () => null;
  });

  it('lists a message whose connection dropped during DATA as uncertain, and sends it again only when a person says so', async () => {
    relay.data = (rcpts, n) => ((rcpts.includes('maybe@acme.test') || rcpts.includes('arrived@acme.test')) && n === 1 ? 'drop' : 'accept');
    await upsert('maybe@acme.test');
    await upsert('arrived@acme.test');
    const uncertain = await eventually('both uncertain', async () => {
      const rows = await listMessages(h.ctx, { status: 'uncertain' });
      return rows.length === 2 ? rows : null;
    });
    expect(uncertain.map((r) => r.email).sort()).toEqual(['arrived@acme.test', 'maybe@acme.test']);
    expect(uncertain.every((r) => r.sequenceId === 'burst' && r.stepId === 'only' && r.sendingAt && r.lastReply)).toBe(true);
    // Never resent on its own.
    await new Promise((r) => setTimeout(r, 1000));
    expect(mailsTo('maybe@acme.test')).toHaveLength(0);
    expect((await rowsTo('maybe@acme.test'))[0]!.status).toBe('uncertain');

    const lines: string[] = [];
    await messagesList({ databaseUrl: h.databaseUrl, status: 'uncertain', json: false, write: (l) => lines.push(l) });
    expect(lines[0]).toMatch(/^id\s+lead\s+account\s+sequence\/step\s+since\s+attempts\s+relay's last words$/);
    const maybeLine = lines.find((l) => l.includes('maybe@acme.test'))!;
    expect(maybeLine).toContain('burst/only');
    expect(maybeLine).toContain('Acme');

    const maybe = uncertain.find((r) => r.email === 'maybe@acme.test')!;
    const resent = await releaseUncertain(h.ctx, maybe.id, 'resend');
    expect(resent.status).toBe('queued');
    const sent = await eventually('resent and delivered', async () => {
      const [m] = await rowsTo('maybe@acme.test');
      return m?.status === 'sent' ? m : null;
    });
    expect(mailsTo('maybe@acme.test')).toHaveLength(1);
    // The same Message-ID as the first try: a copy that did arrive is the same message.
    expect(mailsTo('maybe@acme.test')[0]!.parsed.messageId).toBe(`<${sent.messageId}>`);

    const arrived = uncertain.find((r) => r.email === 'arrived@acme.test')!;
    const marked = await releaseUncertain(h.ctx, arrived.id, 'mark_sent');
    expect(marked.status).toBe('sent');
    expect(marked.sentAt).toEqual(arrived.sendingAt);
    await expect(releaseUncertain(h.ctx, arrived.id, 'resend')).rejects.toMatchObject({ code: 'not_uncertain' });
    await new Promise((r) => setTimeout(r, 1000));
    expect(mailsTo('arrived@acme.test')).toHaveLength(0);
    expect(await listMessages(h.ctx, { status: 'uncertain' })).toEqual([]);
    relay.data = () => 'accept';
  });

  it('reads a message for its send as drizzle reads it: lead, account and suppression decoded column by column', async () => {
    await upsert('decoded@acme.test');
    await upsert('decoded-suppressed@acme.test');
    // Both settled first: a send finishing between the two reads would change the row under the comparison.
    const rows = await eventually('both messages settled', async () => {
      const r = await h.ctx.db.select().from(messages).where(inArray(messages.toAddress, ['decoded@acme.test', 'decoded-suppressed@acme.test']));
      return r.length >= 2 && r.every((m) => m.status !== 'queued' && m.status !== 'sending') ? r : null;
    });
    await h.ctx.db.insert(suppressions).values({ email: 'decoded-suppressed@acme.test', reason: 'unsubscribed', source: 'test' });
    for (const row of rows) {
      const [viaDrizzle] = await h.ctx.db
        .select({ msg: messages, lead: leads, account: accounts, suppressed: suppressions })
        .from(messages)
        .innerJoin(leads, eq(leads.id, messages.leadId))
        .innerJoin(accounts, eq(accounts.id, leads.accountId))
        .leftJoin(suppressions, eq(suppressions.email, leads.email))
        .where(eq(messages.id, row.id));
      const loaded = await sendRows(h.ctx.database).load(row.id);
      expect(loaded).toEqual(viaDrizzle);
      expect(loaded!.msg.queuedAt).toBeInstanceOf(Date);
      expect(loaded!.suppressed === null).toBe(row.toAddress === 'decoded@acme.test');
    }
    expect(await sendRows(h.ctx.database).load('00000000-0000-4000-8000-000000000000')).toBeNull();
  });
});
