// A person's open or click counts only once it has settled. A scanner's walk over every link of a message
// looks human one click at a time; wherever the batches fall and however the clicks are spaced within the
// burst window, the walk is unmasked before anything counted, so no lead advances and no gate opens.
// Real Postgres, the real recording and settling use cases, on a clock the test moves.
import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/config/duration.js';
import { engagementOf, loadEngagement, loadEngagementOfLeads } from '../../src/db/facts.js';
import { accounts, advances, enrollments, leads, messages, signals } from '../../src/db/schema.js';
import { CLICK_BURST_WINDOW_SECONDS } from '../../src/engagement/clicks.js';
import { signToken, trackingUrls } from '../../src/mail/tracking.js';
import { trackHits, type TrackedHit } from '../../src/usecases/trackBatch.js';
import { reconcile } from '../../src/usecases/reconcile.js';
import { settleSignals } from '../../src/usecases/settleSignals.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
// The test's clock runs with real time from a Tuesday afternoon, and jumps forward where a scenario
// needs time to pass (a person reading, a settle period) instead of sleeping.
let offset = Date.parse('2026-01-06T15:00:00Z') - Date.now();
const now = () => Date.now() + offset;
const jumpTo = (t: number) => {
  if (now() < t) offset += t - now();
};
let h: Harness;
let settleMs: number;

beforeAll(async () => {
  h = await startHarness({ now: () => new Date(now()), settleAfter: '30s' });
  settleMs = parseDuration(h.ctx.config.funnel.tracking.settleAfter);
});
afterAll(async () => h?.close());

/** A lead in awareness with one delivered value email of `linkCount` links, each a value piece of its own. */
async function leadWithMessage(linkCount: number) {
  const tag = randomUUID().slice(0, 8);
  const [account] = await h.ctx.db.insert(accounts).values({ key: `${tag}.test`, name: `${tag} Co`, domain: `${tag}.test` }).returning();
  const [lead] = await h.ctx.db
    .insert(leads)
    .values({ accountId: account!.id, email: `p@${tag}.test`, persona: 'champion', stage: 'awareness', stageEnteredAt: new Date(now() - 86_400_000) })
    .returning();
  const [enrollment] = await h.ctx.db
    .insert(enrollments)
    .values({ leadId: lead!.id, sequenceId: 'awareness-benchmark', sequenceVersion: 'v', state: 'completed', stageEnteredAt: lead!.stageEnteredAt })
    .returning();
  const links = Array.from({ length: linkCount }, (_, i) => ({ id: `l${i}`, url: `https://handrail.example/guide-${i}`, tag: `value:guide-${i}` }));
  const [message] = await h.ctx.db
    .insert(messages)
    .values({ enrollmentId: enrollment!.id, leadId: lead!.id, sequenceId: 'awareness-benchmark', stepId: 'benchmark', status: 'sent', messageId: `${tag}@nurture.test`, templateName: 't', toAddress: lead!.email, kind: 'value', links, sentAt: new Date(now() - 3_600_000) })
    .returning();
  return { lead: lead!, message: message!, token: signToken(h.ctx.settings.trackingSecret, 'track', message!.id) };
}

const SCANNER = 'Mozilla/5.0 (compatible; Barracuda Sentinel)';
const click = (token: string, linkId: string, at: number, ip = '203.0.113.7', userAgent = CHROME): TrackedHit => ({
  kind: 'click',
  hit: { token, linkId, userAgent, ip, method: 'GET', headers: {} },
  at: new Date(at),
});
const pixelHit = (token: string, at: number, ip = '203.0.113.7'): TrackedHit => ({ kind: 'open', hit: { token, userAgent: CHROME, ip, method: 'GET', headers: {} }, at: new Date(at) });

/** Records `hits` in the given batches, each arriving `latency` ms after its last hit; then lets everything settle. */
async function play(batches: TrackedHit[][], latency: number[]) {
  for (const [i, batch] of batches.entries()) {
    jumpTo(Math.max(...batch.map((b) => b.at.getTime())) + (latency[i] ?? 0));
    await trackHits(h.ctx, batch);
  }
}

async function settleAll(leadId: string) {
  offset += settleMs + 1_000;
  await settleSignals(h.ctx, leadId);
}

async function outcome(leadId: string) {
  const [lead] = await h.ctx.db.select().from(leads).where(eq(leads.id, leadId));
  const moved = await h.ctx.db.select().from(advances).where(eq(advances.leadId, leadId));
  const engagement = await loadEngagement(h.ctx.db, h.ctx.config.funnel, lead!, new Date(now()));
  return { lead: lead!, moved, engagement };
}

describe('settling', () => {
  it('counts a person reading link after link over minutes, once each click has settled', async () => {
    const { lead, message, token } = await leadWithMessage(3);
    const start = now();
    await play([[click(token, 'l0', start)], [click(token, 'l1', start + 90_000)]], [200, 200]);
    // Provisional: recorded, shown, not yet counted.
    expect((await outcome(lead.id)).lead).toMatchObject({ stage: 'awareness', scoreBase: 0 });
    expect((await h.ctx.db.select().from(signals).where(eq(signals.messageId, message.id))).every((s) => s.human && s.settledAt === null)).toBe(true);
    await settleAll(lead.id);
    const after = await outcome(lead.id);
    // Two value pieces and their points: the awareness threshold, so the lead moved on (and starts afresh).
    expect(after.lead.stage).toBe('interest');
    expect(after.moved).toHaveLength(1);
    expect(JSON.stringify(after.moved[0]!.evidence)).toContain('valuePieces');
  });

  it('never lets a scanner walking every link advance anyone, whatever the order, spacing and batches', async () => {
    const windowMs = CLICK_BURST_WINDOW_SECONDS * 1000;
    const walk = fc
      .integer({ min: 2, max: 10 })
      .chain((n) =>
        fc.record({
          order: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
          // A second or two a link, or all at once: never a pause longer than the window between two links,
          // but the whole walk may well take longer than the window.
          gaps: fc.array(fc.integer({ min: 0, max: windowMs }), { minLength: n - 1, maxLength: n - 1 }),
          cuts: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
          // How late each batch is recorded: a busy API, a slow database.
          latency: fc.array(fc.integer({ min: 0, max: 3_000 }), { minLength: n + 1, maxLength: n + 1 }),
          // A gateway renders the message (the pixel) just before or during the walk…
          pixel: fc.option(fc.record({ before: fc.integer({ min: 0, max: n - 1 }), lead: fc.integer({ min: 0, max: 3_000 }) })),
          // …and some of its clicks may give it away by agent, some not.
          named: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
        }),
      );
    await fc.assert(
      fc.asyncProperty(walk, async ({ order, gaps, cuts, latency, pixel, named }) => {
        const { lead, token } = await leadWithMessage(order.length);
        let at = now() + 5_000;
        const hits = order.map((link, i) => {
          if (i > 0) at += gaps[i - 1]!;
          return click(token, `l${link}`, at, '203.0.113.7', named[i] ? SCANNER : CHROME);
        });
        if (pixel) hits.splice(pixel.before, 0, pixelHit(token, hits[pixel.before]!.at.getTime() - pixel.lead));
        const batches: TrackedHit[][] = [[]];
        hits.forEach((hit, i) => {
          batches[batches.length - 1]!.push(hit);
          if (cuts[i] && i < hits.length - 1) batches.push([]);
        });
        await play(batches, latency);
        await settleAll(lead.id);
        const { lead: after, moved, engagement } = await outcome(lead.id);
        expect(moved).toEqual([]);
        expect(after.stage).toBe('awareness');
        expect(after.valuePieces).toEqual([]);
        expect(after.scoreBase).toBeCloseTo(0, 9);
        // What gates and branches read: nothing a person did.
        expect(engagement).toMatchObject({ score: 0, valuePieces: 0, clickedTags: [], openedSteps: [] });
      }),
      { numRuns: 40 },
    );
  });

  it('does not count a pixel the gateway fetched just before its first click', async () => {
    const { lead, token } = await leadWithMessage(3);
    const t = now() + 5_000;
    // The render looks like a person; the one click after it names the gateway.
    await play([[pixelHit(token, t)], [click(token, 'l1', t + 2_000, '203.0.113.9', SCANNER)]], [100, 100]);
    await settleAll(lead.id);
    const { lead: after, engagement } = await outcome(lead.id);
    expect(after.scoreBase).toBeCloseTo(0, 9);
    expect(engagement.openedSteps).toEqual([]);
    const [open] = await h.ctx.db.select().from(signals).where(and(eq(signals.leadId, lead.id), eq(signals.kind, 'open')));
    expect(open).toMatchObject({ human: false, reason: 'gateway_render' });
    expect(open!.evidence).toMatchObject({ judgedAgain: expect.any(String) });
  });

  it('settles what Redis lost: reconcile finds provisional signals past their time', async () => {
    const { lead, token } = await leadWithMessage(3);
    await play([[click(token, 'l0', now())]], [0]);
    await h.ctx.queues.settle.obliterate({ force: true });
    offset += settleMs + 1_000;
    expect((await reconcile(h.ctx)).settles).toBe(1);
    // The settle worker picks up the job reconcile added.
    const settled = await eventually('settled by the worker', async () => {
      const rows = await h.ctx.db.select().from(signals).where(eq(signals.leadId, lead.id));
      return rows.every((r) => r.settledAt) ? rows : null;
    });
    expect(settled).toHaveLength(1);
    expect((await outcome(lead.id)).lead.valuePieces).toEqual(['value:guide-0']);
  });

  it('through HTTP: a scanner walking the links seconds apart, in separate batches, with the settle worker held up, advances nobody', async () => {
    const { lead, message } = await leadWithMessage(4);
    const urls = trackingUrls(h.http.url, h.ctx.settings.trackingSecret, message.id);
    const settle = h.worker('settle');
    await settle.pause();
    // The gateway renders the message (the pixel), then follows each link a second or so apart: every
    // request is its own batch, and each alone looks like a person in Chrome an hour after delivery.
    const gateway = { 'user-agent': CHROME, 'x-forwarded-for': '198.51.100.23' };
    expect((await fetch(urls.pixel, { headers: gateway })).status).toBe(200);
    for (const link of ['l2', 'l0', 'l3', 'l1']) {
      offset += 1_100;
      const r = await fetch(urls.click(link), { redirect: 'manual', headers: gateway });
      expect(r.status).toBe(302);
    }
    const recorded = await eventually('the walk recorded', async () => {
      const rows = await h.ctx.db.select().from(signals).where(eq(signals.messageId, message.id));
      return rows.length === 5 ? rows : null;
    });
    // Unmasked before anything counted: every hit is the machine's, and final.
    expect(recorded.every((r) => !r.human && r.settledAt)).toBe(true);
    expect(recorded.filter((r) => r.kind === 'open').map((r) => r.reason)).toEqual(['gateway_render']);
    // Long after the settle time, the held-up worker runs what reconcile hands it.
    offset += settleMs + 1_000;
    await reconcile(h.ctx);
    await settle.resume();
    await eventually('nothing left provisional', async () => (await h.ctx.db.select().from(signals).where(eq(signals.leadId, lead.id))).every((r) => r.settledAt));
    const { lead: after, moved } = await outcome(lead.id);
    expect(moved).toEqual([]);
    expect(after).toMatchObject({ stage: 'awareness', valuePieces: [], scoreBase: 0 });
  });
  it("reads a batch's engagement as it reads each lead alone: each back to its own run's start, no further", async () => {
    // Three leads in their stage since yesterday. One's run began a week ago (an enrollment older than
    // its stage), one's an hour ago, one's is not asked for (a fan-out page: the stage's start alone).
    const week = await leadWithMessage(1);
    const hour = await leadWithMessage(1);
    const none = await leadWithMessage(1);
    const t = now();
    const runs = new Map([
      [week.lead.id, new Date(t - 7 * 86_400_000)],
      [hour.lead.id, new Date(t - 3_600_000)],
    ]);
    // Settled human clicks three days ago (before every stage began), and an hour and a half ago.
    for (const { lead, message } of [week, hour, none]) {
      for (const [i, ago] of [3 * 86_400_000, 5_400_000].entries()) {
        await h.ctx.db.insert(signals).values({
          sourceId: `batch-read-${message.id}-${i}`, leadId: lead.id, messageId: message.id, sequenceId: 'awareness-benchmark', stepId: 'benchmark',
          kind: 'click', human: true, reason: 'test', linkId: 'l0', tag: 'value:guide-0', occurredAt: new Date(t - ago), settledAt: new Date(t - ago),
        });
      }
    }
    const batch = await loadEngagementOfLeads(h.ctx.db, [week.lead.id, hour.lead.id, none.lead.id], runs);
    // Only the week-long run reaches back past its stage's start.
    expect(batch.get(week.lead.id)).toHaveLength(2);
    expect(batch.get(hour.lead.id)).toHaveLength(1);
    expect(batch.get(none.lead.id)).toHaveLength(1);
    for (const { lead } of [week, hour]) {
      const run = { sequenceId: 'awareness-benchmark', since: runs.get(lead.id)! };
      const alone = await loadEngagement(h.ctx.db, h.ctx.config.funnel, lead, new Date(t), run);
      expect(engagementOf(h.ctx.config.funnel, lead, batch.get(lead.id)!, new Date(t), run)).toEqual(alone);
    }
    expect(engagementOf(h.ctx.config.funnel, week.lead, batch.get(week.lead.id)!, new Date(t), { sequenceId: 'awareness-benchmark', since: runs.get(week.lead.id)! }).clickedSteps).toEqual(['benchmark']);
  });
});
