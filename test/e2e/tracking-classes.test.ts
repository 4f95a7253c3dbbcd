// Every class of tracking traffic in the fixtures, replayed through the real HTTP endpoints into Postgres:
// the request as the fetcher sent it (agent, address behind our trusted proxy, method, headers), as long
// after delivery as it came, and the verdict stored in the signal row. Fixtures that need a message's
// earlier hits are covered by the classifier's unit tests and by settling.test.ts.
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accounts, enrollments, leads, messages, signals } from '../../src/db/schema.js';
import { trackingUrls } from '../../src/mail/tracking.js';
import { startHarness, type Harness } from '../support/harness.js';

type Fixture = {
  name: string;
  hit: { userAgent: string | null; ip: string; method: string; headers?: Record<string, string>; at: string; sentAt: string | null; linkCount: number; linkId?: string; honeypot?: boolean; otherHits?: unknown[] };
  expected: { human: boolean; reason: string; rule?: string };
};
const load = (file: string) => (JSON.parse(readFileSync(`test/fixtures/tracking/${file}`, 'utf8')) as Fixture[]).filter((f) => !f.hit.otherHits?.length);
const opens = load('opens.json');
const clicks = load('clicks.json');

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

/** A delivered message whose send was as long before now as the fixture's hit came after its send. */
async function messageFor(f: Fixture) {
  const tag = randomUUID().slice(0, 8);
  const [account] = await h.ctx.db.insert(accounts).values({ key: `${tag}.test`, name: tag }).returning();
  const [lead] = await h.ctx.db.insert(leads).values({ accountId: account!.id, email: `p@${tag}.test`, persona: 'champion', stage: 'awareness' }).returning();
  const [run] = await h.ctx.db.insert(enrollments).values({ leadId: lead!.id, sequenceId: 'awareness-benchmark', sequenceVersion: 'v', state: 'completed', stageEnteredAt: lead!.stageEnteredAt }).returning();
  const links = Array.from({ length: Math.max(f.hit.linkCount, 1) }, (_, i) => ({ id: `l${i + 1}`, url: `https://handrail.example/${i + 1}`, tag: null as string | null }));
  if (f.hit.linkId && !links.some((l) => l.id === f.hit.linkId)) links[0]!.id = f.hit.linkId;
  const link = links.find((l) => l.id === (f.hit.linkId ?? 'l1'))!;
  if (f.hit.honeypot) link.tag = 'honeypot';
  const sentAt = f.hit.sentAt ? new Date(h.ctx.now().getTime() - (Date.parse(f.hit.at) - Date.parse(f.hit.sentAt))) : null;
  const [msg] = await h.ctx.db
    .insert(messages)
    .values({ enrollmentId: run!.id, leadId: lead!.id, sequenceId: 'awareness-benchmark', stepId: 'benchmark', status: 'sent', messageId: `${tag}@nurture.test`, templateName: 't', toAddress: lead!.email, links, sentAt })
    .returning();
  return { msg: msg!, link };
}

/** The request exactly as the fixture's fetcher sent it: no headers but its own (fetch would add some). */
function send(url: string, f: Fixture): Promise<number> {
  const headers: Record<string, string> = { ...(f.hit.headers ?? {}), 'x-forwarded-for': f.hit.ip };
  if (f.hit.userAgent !== null) headers['user-agent'] = f.hit.userAgent;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: f.hit.method, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The verdict stored for the message's one hit, with the rule its evidence names (when the fixture names one). */
async function verdictOf(messageId: string, f: Fixture) {
  const [row] = await h.ctx.db.select().from(signals).where(eq(signals.messageId, messageId));
  const rule = (row!.evidence.verdict as { rule?: string } | undefined)?.rule;
  return { human: row!.human, reason: row!.reason, ...(f.expected.rule ? { rule } : {}) };
}

describe('tracking traffic end to end', () => {
  it('has opens and clicks of every class to replay', () => {
    expect(new Set(opens.map((f) => f.expected.reason)).size).toBeGreaterThanOrEqual(10);
    expect(new Set(clicks.map((f) => f.expected.reason)).size).toBeGreaterThanOrEqual(10);
  });

  it.each(opens.map((f) => [f.name, f] as const))('pixel: %s', async (_name, f) => {
    const { msg } = await messageFor(f);
    const urls = trackingUrls(h.http.url, h.ctx.settings.trackingSecret, msg.id);
    expect(await send(urls.pixel, f)).toBe(200);
    expect(await verdictOf(msg.id, f)).toEqual(f.expected);
  });

  it.each(clicks.map((f) => [f.name, f] as const))('click: %s', async (_name, f) => {
    const { msg, link } = await messageFor(f);
    const urls = trackingUrls(h.http.url, h.ctx.settings.trackingSecret, msg.id);
    expect(await send(urls.click(link.id), f)).toBe(302);
    expect(await verdictOf(msg.id, f)).toEqual(f.expected);
  });
});
