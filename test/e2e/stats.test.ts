// Reporting through the real loop: leads arrive by signed webhook, people and machines open and click the
// real tracking links, one person replies, one unsubscribes, and `nurture stats` (and GET /v1/stats)
// count people, not machines.
import { and, eq, isNull } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advances, leads, signals } from '../../src/db/schema.js';
import { statsCommand } from '../../src/cli/stats.js';
import { getStats, statsRoute, type Stats } from '../../src/usecases/stats.js';
import { UseCaseError } from '../../src/usecases/errors.js';
import { eventually, SETTLE_BUDGET_MS, startHarness, type Harness } from '../support/harness.js';

const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const CONFIG = 'test/fixtures/config/e2e';
let offset = 0;
const clock = () => new Date(Date.now() + offset);
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: CONFIG, now: clock });
});
afterAll(async () => h?.close());

const upsert = async (email: string, persona: string, domain: string, extra: { stage?: string; sequence?: string } = {}) => {
  const r = await h.post('/v1/triggers', {
    type: 'lead.upsert',
    ...(extra.sequence ? { sequence: extra.sequence } : {}),
    lead: {
      email,
      firstName: email.split('@')[0],
      persona,
      ...(extra.stage ? { stage: extra.stage } : {}),
      owner: { name: 'Sam Rivera', email: 'sam@handrail.example' },
      account: { name: domain === 'alpha.test' ? 'Alpha' : 'Beta', domain },
    },
  });
  expect(r.status).toBe(200);
  return r.json;
};
const mailsTo = (email: string) => h.smtp.mails.filter((m) => m.envelopeTo.includes(email));
const nthMailTo = (email: string, n: number) => eventually(`mail ${n + 1} to ${email}`, async () => mailsTo(email)[n]);
const links = (html: string) => [...html.matchAll(/href="([^"]+\/t\/c\/[^"]+)"/g)].map((m) => m[1]!);
const pixelOf = (html: string) => /src="([^"]+\/t\/o\/[^"]+\.gif)"/.exec(html)![1]!;
const signalCount = async (n: number) => eventually(`${n} signals`, async () => ((await h.ctx.db.select().from(signals)).length >= n ? true : null));

let stats: Stats;

describe('stats', () => {
  beforeAll(async () => {
    // Ana (champion, Alpha) opens and clicks as a person, then replies to the follow-up.
    await upsert('ana@alpha.test', 'champion', 'alpha.test');
    // Max (champion, Alpha) has Apple Mail Privacy Protection and a security scanner: machines only.
    await upsert('max@alpha.test', 'champion', 'alpha.test');
    // Eve (economic buyer, Beta) gets the newsletter, clicks a value piece, then unsubscribes.
    await upsert('eve@beta.test', 'economic_buyer', 'beta.test', { sequence: 'awareness-newsletter' });
    // Zed (economic buyer, Beta) arrives already in interest.
    await upsert('zed@beta.test', 'economic_buyer', 'beta.test', { stage: 'interest' });

    const anaIntro = await nthMailTo('ana@alpha.test', 0);
    const maxIntro = await nthMailTo('max@alpha.test', 0);
    const eveNews = await nthMailTo('eve@beta.test', 0);
    await nthMailTo('zed@beta.test', 0);

    // Machines first, seconds after delivery: an Apple proxy prefetch and a scanner following the link.
    await fetch(pixelOf(String(maxIntro.parsed.html)), { headers: { 'user-agent': 'Mozilla/5.0', 'x-forwarded-for': '17.58.101.4' } });
    await fetch(links(String(maxIntro.parsed.html))[0]!, { redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0 (compatible; Barracuda Sentinel)' } });
    await signalCount(2);

    // People, a minute later.
    offset += 60_000;
    const anaHtml = String(anaIntro.parsed.html);
    expect((await fetch(pixelOf(anaHtml), { headers: { 'user-agent': CHROME } })).status).toBe(200);
    expect((await fetch(links(anaHtml).find((u) => u.endsWith('/guide'))!, { redirect: 'manual', headers: { 'user-agent': CHROME } })).status).toBe(302);
    const eveGuide = links(String(eveNews.parsed.html)).find((u) => u.endsWith('/guide'))!;
    expect((await fetch(eveGuide, { redirect: 'manual', headers: { 'user-agent': CHROME } })).status).toBe(302);
    await signalCount(5);
    await eventually('eve engaged', async () => (await h.ctx.db.select().from(leads).where(eq(leads.email, 'eve@beta.test')))[0]?.engagedAt, SETTLE_BUDGET_MS);
    const unsubscribeUrl = /<([^>]+\/u\/[^>]+)>/.exec(eveNews.raw.replace(/\r?\n /g, ' '))![1]!;
    const unsub = await fetch(unsubscribeUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
    expect(unsub.status).toBe(200);

    // Both champions get the follow-up; 45 minutes on (short of the next 1h wait), Ana answers it.
    const anaFollowUp = await nthMailTo('ana@alpha.test', 1);
    await nthMailTo('max@alpha.test', 1);
    offset += 45 * 60_000;
    const reply = [
      'From: Ana <ana@alpha.test>',
      'To: Sam Rivera <sam@handrail.example>',
      `Subject: ${anaFollowUp.parsed.subject}`,
      'Message-ID: <stats-reply-1@alpha.test>',
      `In-Reply-To: ${anaFollowUp.parsed.messageId}`,
      'Content-Type: text/plain; charset=UTF-8',
      '',
      'Thanks Sam, could we talk on Thursday?',
      '',
    ].join('\r\n');
    const inbound = await h.post('/v1/inbound', null, { raw: reply, headers: { 'content-type': 'message/rfc822' } });
    expect(inbound.json).toMatchObject({ matched: true, kind: 'reply', recorded: true });
    // The advance to interest enrolls Ana in the interest sequence, whose playbook goes out.
    await nthMailTo('ana@alpha.test', 2);
    await eventually('playbook to ana marked sent', async () => {
      const s = await getStats(h.ctx.db);
      return s.sequences.find((q) => q.sequence === 'interest-call')?.totals.sent === 2 ? true : null;
    });
    // Stats count settled people only: every person's open and click has settled before the snapshot.
    await eventually('every human signal settled', async () => ((await h.ctx.db.select().from(signals).where(and(eq(signals.human, true), isNull(signals.settledAt)))).length === 0 ? true : null), SETTLE_BUDGET_MS);
    stats = await getStats(h.ctx.db, { stages: h.ctx.config.funnel.stages });
  });

  it('counts each step in delivered messages, people apart from machines', () => {
    expect(stats.sequences.map((s) => s.sequence)).toEqual(['awareness-newsletter', 'awareness-notes', 'interest-call']);
    const notes = stats.sequences.find((s) => s.sequence === 'awareness-notes')!;
    // Steps in the sequence's order; last-note waits an hour and has not gone out.
    expect(notes.steps.map((s) => s.step)).toEqual(['intro', 'follow-up']);
    expect(notes.steps[0]).toEqual({
      step: 'intro', sent: 2, bounced: 0, humanOpens: 1, machineOpens: 1, humanClicks: 1, botClicks: 1, replies: 0, unsubscribes: 0,
      openRate: 0.5, clickRate: 0.5, replyRate: 0,
    });
    expect(notes.steps[1]).toMatchObject({ step: 'follow-up', sent: 2, humanOpens: 0, machineOpens: 0, humanClicks: 0, replies: 1, replyRate: 0.5 });
    expect(notes.totals).toEqual({
      sent: 4, bounced: 0, humanOpens: 1, machineOpens: 1, humanClicks: 1, botClicks: 1, replies: 1, unsubscribes: 0,
      openRate: 0.25, clickRate: 0.25, replyRate: 0.25,
    });
    const news = stats.sequences.find((s) => s.sequence === 'awareness-newsletter')!;
    // A human click with images blocked still proves a person opened it.
    expect(news.totals).toMatchObject({ sent: 1, humanOpens: 1, machineOpens: 0, humanClicks: 1, unsubscribes: 1, openRate: 1, clickRate: 1 });
    expect(stats.sequences.find((s) => s.sequence === 'interest-call')!.steps).toEqual([
      expect.objectContaining({ step: 'playbook', sent: 2, humanOpens: 0, replies: 0, openRate: 0 }),
    ]);
  });

  it('counts per persona', () => {
    expect(stats.personas).toEqual([
      { persona: 'champion', leads: 2, sent: 5, humanOpens: 1, humanClicks: 1, replies: 1, unsubscribes: 0 },
      { persona: 'economic_buyer', leads: 2, sent: 2, humanOpens: 1, humanClicks: 1, replies: 0, unsubscribes: 1 },
    ]);
  });

  it('follows leads through the stages: entered, advanced, rate and median time', async () => {
    const [ana] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'ana@alpha.test'));
    const [advance] = await h.ctx.db.select().from(advances).where(eq(advances.leadId, ana!.id));
    const days = Math.round(((advance!.at.getTime() - ana!.createdAt.getTime()) / 86_400_000) * 1000) / 1000;
    expect(days).toBeGreaterThan(0.03); // 46 minutes on the harness clock
    expect(days).toBeLessThan(0.04);
    expect(stats.stages.map((s) => s.stage)).toEqual(['awareness', 'interest', 'desire', 'action', 'customer']);
    expect(stats.stages[0]).toEqual({ stage: 'awareness', leadsNow: 2, entered: 3, advanced: 1, advancementRate: 0.333, medianDaysToAdvance: days });
    // Zed was created in interest, Ana advanced into it.
    expect(stats.stages[1]).toEqual({ stage: 'interest', leadsNow: 2, entered: 2, advanced: 0, advancementRate: 0, medianDaysToAdvance: null });
    expect(stats.stages[2]).toEqual({ stage: 'desire', leadsNow: 0, entered: 0, advanced: 0, advancementRate: null, medianDaysToAdvance: null });
  });

  it('lists accounts by engaged people, by persona', () => {
    expect(stats.accounts).toEqual([
      { account: 'Alpha', key: 'alpha.test', stage: null, leads: 2, engagedLeads: 1, engagedByPersona: { champion: 1 } },
      { account: 'Beta', key: 'beta.test', stage: null, leads: 2, engagedLeads: 1, engagedByPersona: { economic_buyer: 1 } },
    ]);
  });

  it('narrows to a sequence and a period', async () => {
    const news = await getStats(h.ctx.db, { sequence: 'awareness-newsletter' });
    expect(news.sequences.map((s) => s.sequence)).toEqual(['awareness-newsletter']);
    // Only Eve is enrolled in the newsletter.
    expect(news.personas).toEqual([{ persona: 'economic_buyer', leads: 1, sent: 1, humanOpens: 1, humanClicks: 1, replies: 0, unsubscribes: 1 }]);

    const later = await getStats(h.ctx.db, { since: new Date(clock().getTime() + 60_000), stages: h.ctx.config.funnel.stages });
    expect(later.sequences).toEqual([]);
    expect(later.personas.map((p) => p.sent)).toEqual([0, 0]);
    expect(later.stages.map((s) => s.entered)).toEqual([0, 0, 0, 0, 0]);
    expect(later.stages.map((s) => s.leadsNow)).toEqual([2, 2, 0, 0, 0]);
    expect(later.accounts.map((a) => a.engagedLeads)).toEqual([0, 0]);
  });

  it('answers GET /v1/stats with the same numbers, and refuses a since it cannot read', async () => {
    const viaRoute = await statsRoute(h.ctx, new URL(`${h.http.url}/v1/stats`));
    expect(viaRoute).toEqual(stats);
    const oneAccount = await statsRoute(h.ctx, new URL(`${h.http.url}/v1/stats?since=1d&sequence=interest-call&accounts=1`));
    expect(oneAccount.sequences.map((s) => [s.sequence, s.totals.sent])).toEqual([['interest-call', 2]]);
    expect(oneAccount.accounts).toHaveLength(1);
    expect(new Date(oneAccount.since!).getTime()).toBeCloseTo(clock().getTime() - 86_400_000, -4);
    await expect(statsRoute(h.ctx, new URL(`${h.http.url}/v1/stats?since=yesterday`))).rejects.toMatchObject({ code: 'invalid_field', field: 'since' });
    await expect(statsRoute(h.ctx, new URL(`${h.http.url}/v1/stats?since=yesterday`))).rejects.toBeInstanceOf(UseCaseError);
    // A sequence neither configured nor ever enrolled in is most likely a typo: said so, not answered with
    // an empty report. One in the configuration that no one has entered yet is an empty report.
    expect((await getStats(h.ctx.db, { sequence: 'brand-new', sequences: ['brand-new'] })).sequences).toEqual([]);
    await expect(statsRoute(h.ctx, new URL(`${h.http.url}/v1/stats?sequence=awareness-note`))).rejects.toMatchObject({
      code: 'invalid_field',
      field: 'sequence',
      message: expect.stringContaining('(did you mean awareness-notes?)'),
    });
    const typo = await fetch(`${h.http.url}/v1/stats?sequence=awareness-note`);
    expect([typo.status, (await typo.json()).error.field]).toEqual([422, 'sequence']);
    // Over HTTP, from this machine: the same numbers; a bad since is a 422 naming the field.
    const res = await fetch(`${h.http.url}/v1/stats`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(stats)));
    const bad = await fetch(`${h.http.url}/v1/stats?since=yesterday`);
    expect(bad.status).toBe(422);
    expect((await bad.json()).error.field).toBe('since');
  });

  it('prints aligned tables, and the same Stats as JSON', async () => {
    const lines: string[] = [];
    expect(await statsCommand({ databaseUrl: h.databaseUrl, json: false, configDir: CONFIG, write: (l) => lines.push(l) })).toBe(0);
    const row = (first: string) => lines.find((l) => l.trim().split(/\s{2,}/)[0] === first)?.trim().split(/\s{2,}/);
    expect(row('sequence/step')).toEqual(['sequence/step', 'sent', 'bounced', 'opens', 'open%', 'machine', 'clicks', 'click%', 'bot', 'replies', 'reply%', 'unsubs']);
    expect(row('awareness-notes/intro')).toEqual(['awareness-notes/intro', '2', '0', '1', '50.0%', '1', '1', '50.0%', '1', '0', '0.0%', '0']);
    expect(row('awareness-notes (total)')).toEqual(['awareness-notes (total)', '4', '0', '1', '25.0%', '1', '1', '25.0%', '1', '1', '25.0%', '0']);
    expect(row('champion')).toEqual(['champion', '2', '5', '1', '1', '1', '0']);
    expect(row('awareness')).toEqual(['awareness', '2', '3', '1', '33.3%', String(stats.stages[0]!.medianDaysToAdvance)]);
    expect(row('desire')).toEqual(['desire', '0', '0', '0', '-', '-']);
    expect(row('Beta')).toEqual(['Beta', '-', '2', '1', 'economic_buyer 1']);
    // Columns line up: every row of the funnel table is as wide as its header.
    const header = lines.findIndex((l) => l.includes('sequence/step'));
    const opensAt = lines[header]!.indexOf('opens') + 'opens'.length;
    expect(lines[header + 1]![opensAt - 1]).toMatch(/\d/);

    const json: string[] = [];
    await statsCommand({ databaseUrl: h.databaseUrl, json: true, configDir: CONFIG, write: (l) => json.push(l) });
    expect(JSON.parse(json.join('\n'))).toEqual(stats);
  });
});
