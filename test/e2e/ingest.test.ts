// Tracking ingestion in bursts: a batch of hits costs a fixed number of SQL statements whatever its size,
// every hit is stored with its log line, and a pixel is answered only once its hit is committed, so a
// crash can lose no hit the server has acknowledged.
import { randomUUID } from 'node:crypto';
import { and, eq, inArray } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.js';
import { connectDatabase } from '../../src/db/client.js';
import { accounts, activity, enrollments, leads, messages, signals } from '../../src/db/schema.js';
import { signToken, trackingUrls } from '../../src/mail/tracking.js';
import { trackHits, TrackingBatcher, type TrackedHit } from '../../src/usecases/trackBatch.js';
import { startHarness, type Harness } from '../support/harness.js';

const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const APPLE = 'Mozilla/5.0';
let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

/** `n` leads at one account, each with one delivered value email of two links. */
async function audience(n: number) {
  const tag = randomUUID().slice(0, 8);
  const [account] = await h.ctx.db.insert(accounts).values({ key: `${tag}.test`, name: `${tag} Co`, domain: `${tag}.test` }).returning();
  const people = await h.ctx.db
    .insert(leads)
    .values(Array.from({ length: n }, (_, i) => ({ accountId: account!.id, email: `p${i}@${tag}.test`, persona: 'champion', stage: 'awareness', stageEnteredAt: new Date(Date.now() - 86_400_000) })))
    .returning();
  const enrolled = await h.ctx.db
    .insert(enrollments)
    .values(people.map((l) => ({ leadId: l.id, sequenceId: 'awareness-benchmark', sequenceVersion: 'v', state: 'completed', stageEnteredAt: l.stageEnteredAt })))
    .returning();
  const links = [
    { id: 'a', url: 'https://handrail.example/a', tag: 'value:a' },
    { id: 'b', url: 'https://handrail.example/b', tag: 'value:b' },
  ];
  const sent = await h.ctx.db
    .insert(messages)
    .values(enrolled.map((e, i) => ({ enrollmentId: e.id, leadId: e.leadId, sequenceId: 'awareness-benchmark', stepId: 'benchmark', status: 'sent', messageId: `${tag}-${i}@nurture.test`, templateName: 't', toAddress: people[i]!.email, kind: 'value', links, sentAt: new Date(Date.now() - 3_600_000) })))
    .returning();
  return { account: account!, messages: sent, tokenOf: (id: string) => signToken(h.ctx.settings.trackingSecret, 'track', id) };
}

/** A burst across the audience: machine and person-like opens, and a person's click on one link each. */
function burst(a: Awaited<ReturnType<typeof audience>>, size: number, net = 51): TrackedHit[] {
  const at = new Date();
  return Array.from({ length: size }, (_, i): TrackedHit => {
    const m = a.messages[i % a.messages.length]!;
    const token = a.tokenOf(m.id);
    const ip = `198.${net}.${(i >> 8) & 255}.${i & 255}`;
    if (i % 7 === 3) return { kind: 'click', at, hit: { token, linkId: 'a', userAgent: CHROME, ip, method: 'GET', headers: {} } };
    return { kind: 'open', at, hit: { token, userAgent: i % 5 === 0 ? CHROME : APPLE, ip, method: 'GET', headers: {} } };
  });
}

/** The statements `work` sends, on a pool of its own (the workers' reconcile and settle share the harness's). */
async function statementsOf(work: (ctx: Context) => Promise<unknown>): Promise<string[]> {
  const database = connectDatabase(h.databaseUrl, { max: 4 });
  const seen: string[] = [];
  // (Leaving out the driver's own look-up of array types, once per new connection.)
  (database.sql.options as { debug?: unknown }).debug = (_conn: number, query: string) => void (/^\s*select b\.oid, b\.typarray/.test(query) || seen.push(query.trim().split(/\s+/).slice(0, 3).join(' ')));
  try {
    await work({ ...h.ctx, database, db: database.db });
  } finally {
    await database.close();
  }
  return seen;
}

describe('tracking ingestion', () => {
  it('costs the same two statements for a batch of 5 hits as for one of 600: one lookup, one write', async () => {
    const a = await audience(200);
    const small = await statementsOf((ctx) => trackHits(ctx, burst(a, 5)));
    const large = await statementsOf((ctx) => trackHits(ctx, burst(a, 600, 52)));
    expect(small).toHaveLength(2);
    expect(large).toEqual(small);
    // Every hit is a signal, each with its own log line naming its lead and account.
    const ids = a.messages.map((m) => m.id);
    const stored = await h.ctx.db.select({ sourceId: signals.sourceId, leadId: signals.leadId }).from(signals).where(inArray(signals.messageId, ids));
    expect(stored).toHaveLength(605);
    const logged = await h.ctx.db.select({ email: activity.email, accountName: activity.accountName, data: activity.data }).from(activity).where(eq(activity.accountId, a.account.id));
    expect(logged).toHaveLength(605);
    expect(new Set(logged.map((l) => (l.data as { sourceId: string }).sourceId))).toEqual(new Set(stored.map((s) => s.sourceId)));
    expect(logged.every((l) => l.email?.endsWith(`@${a.account.key}`) && l.accountName === a.account.name)).toBe(true);
  });

  it('records a hit seen twice once, and logs it once', async () => {
    const a = await audience(3);
    const hits = burst(a, 6);
    await trackHits(h.ctx, hits);
    const again = await statementsOf((ctx) => trackHits(ctx, hits));
    expect(again).toHaveLength(2);
    const ids = a.messages.map((m) => m.id);
    expect(await h.ctx.db.$count(signals, inArray(signals.messageId, ids))).toBe(6);
    expect(await h.ctx.db.$count(activity, eq(activity.accountId, a.account.id))).toBe(6);
  });

  it('answers a pixel only once its hit is committed in Postgres', async () => {
    const a = await audience(1);
    const m = a.messages[0]!;
    const pixel = trackingUrls(h.http.url, h.ctx.settings.trackingSecret, m.id).pixel;
    const blocker = postgres(h.databaseUrl, { max: 1, onnotice: () => {} });
    let answered = false;
    let response!: Promise<Response>;
    try {
      await blocker.begin(async (tx) => {
        // Inserts into signals wait behind this lock: the hit cannot commit while it is held.
        await tx`lock table signals in share row exclusive mode`;
        response = fetch(pixel, { headers: { 'user-agent': CHROME, 'x-forwarded-for': '203.0.113.50' } });
        void response.then(() => (answered = true));
        // Until the lock goes, the pixel is not answered (a crash now would lose nothing acknowledged).
        const waited = await h.ctx.database.sql`select pg_sleep(0.5)`.then(() => answered);
        expect(waited).toBe(false);
      });
    } finally {
      await blocker.end();
    }
    const res = await response;
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/gif');
    // By the time the answer arrived, the hit was a row.
    const rows = await h.ctx.db.select().from(signals).where(and(eq(signals.messageId, m.id), eq(signals.kind, 'open')));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.evidence).toMatchObject({ userAgent: CHROME, ip: '203.0.113.50' });
  });

  it('writes a batch with clicks alone, so the next sees them, even where batches of opens overlap', async () => {
    const a = await audience(1);
    const m = a.messages[0]!;
    // Every hit its own batch, two writes allowed at once: a scanner's walk over both links arrives together.
    const batcher = new TrackingBatcher(h.ctx, { maxBatch: 1, maxWaitMs: 0, maxWrites: 2 });
    const hit = (ip: string) => ({ token: a.tokenOf(m.id), userAgent: CHROME, ip, method: 'GET', headers: {} });
    const answers = await Promise.all([batcher.open(hit('203.0.113.70')), batcher.click({ ...hit('203.0.113.71'), linkId: 'a' }), batcher.click({ ...hit('203.0.113.72'), linkId: 'b' }), batcher.open(hit('203.0.113.73'))]);
    await batcher.drain();
    expect(answers).toEqual([true, 'https://handrail.example/a', 'https://handrail.example/b', true]);
    const clicks = await h.ctx.db.select({ linkId: signals.linkId, human: signals.human, reason: signals.reason }).from(signals).where(and(eq(signals.messageId, m.id), eq(signals.kind, 'click')));
    // The second click saw the first: the walk is unmasked, and both are machine.
    expect(clicks).toHaveLength(2);
    expect(clicks.map((c) => c.reason)).toContain('link_burst');
    expect(clicks.every((c) => !c.human)).toBe(true);
  });

  it('stores each of many concurrent pixel hits, answered or not, once', async () => {
    const a = await audience(40);
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const m = a.messages[i % a.messages.length]!;
        return fetch(trackingUrls(h.http.url, h.ctx.settings.trackingSecret, m.id).pixel, { headers: { 'user-agent': APPLE, 'x-forwarded-for': `17.1.${i >> 8}.${i & 255}` } }).then((r) => r.status);
      }),
    );
    expect(answers.every((s) => s === 200)).toBe(true);
    const ids = a.messages.map((m) => m.id);
    const stored = await h.ctx.db.select({ human: signals.human, reason: signals.reason }).from(signals).where(inArray(signals.messageId, ids));
    expect(stored).toHaveLength(200);
    expect(stored.every((s) => !s.human && s.reason === 'apple_mpp')).toBe(true);
    expect(await h.ctx.db.$count(activity, eq(activity.accountId, a.account.id))).toBe(200);
  });
});
