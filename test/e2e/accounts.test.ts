// Several people at one account: the account advances when three of them, across two personas, have
// engaged; its lagging leads move with it, and the user's CRM hears of it through signed webhooks.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq } from 'drizzle-orm';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accounts, advances, leads } from '../../src/db/schema.js';
import { eventually, SETTLE_BUDGET_MS, startHarness, type Harness } from '../support/harness.js';

const CHROME = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
let offset = 0;
let h: Harness;
const received: { headers: Record<string, string>; body: string }[] = [];
const crm = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    received.push({ headers: req.headers as Record<string, string>, body });
    // The first delivery fails: the outbox retries it.
    res.writeHead(received.length === 1 ? 503 : 204).end();
  });
});

beforeAll(async () => {
  await new Promise<void>((r) => crm.listen(0, '127.0.0.1', () => r()));
  h = await startHarness({ configDir: 'test/fixtures/config/accounts', now: () => new Date(Date.now() + offset) });
  h.ctx.config.funnel.webhooks = [{ url: `http://127.0.0.1:${(crm.address() as AddressInfo).port}/crm`, events: ['lead.advanced', 'account.advanced'] }];
});
afterAll(async () => {
  await h?.close();
  crm.close();
});

const people = [
  ['ana@acme.test', 'champion'],
  ['ben@acme.test', 'champion'],
  ['cy@acme.test', 'economic_buyer'],
  ['dee@acme.test', 'technical_evaluator'],
] as const;

async function clickGuide(email: string) {
  const mail = await eventually(`mail to ${email}`, async () => h.smtp.mails.find((m) => m.envelopeTo.includes(email)));
  const url = [...String(mail.parsed.html).matchAll(/href="([^"]+\/t\/c\/[^"]+\/guide)"/g)][0]![1]!;
  offset += 60_000;
  expect((await fetch(url, { redirect: 'manual', headers: { 'user-agent': CHROME } })).status).toBe(302);
  // Engaged once the click has settled (no scanner's walk followed it).
  await eventually(`${email} engaged`, async () => (await h.ctx.db.select().from(leads).where(eq(leads.email, email)))[0]?.engagedAt, SETTLE_BUDGET_MS);
}

describe('account coverage', () => {
  it('advances the account on three engaged people across two personas, and moves its leads with it', async () => {
    for (const [email, persona] of people) {
      const r = await h.post('/v1/triggers', { type: 'lead.upsert', lead: { email, firstName: email.split('@')[0], persona, owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Acme', domain: 'acme.test' } } });
      expect(r.status).toBe(200);
    }
    await Promise.all([clickGuide('ana@acme.test'), clickGuide('ben@acme.test')]);
    // Two champions are one voice: not yet a committee.
    expect((await h.ctx.db.select().from(accounts))[0]!.stage).toBeNull();

    await clickGuide('cy@acme.test');
    const account = await eventually('account advance', async () => {
      const [a] = await h.ctx.db.select().from(accounts);
      return a?.stage === 'interest' ? a : null;
    });
    expect(account.stageEnteredAt).toBeTruthy();
    const rows = await h.ctx.db.select().from(advances);
    const accountAdvance = rows.find((r) => r.accountId && !r.leadId)!;
    expect(accountAdvance).toMatchObject({ toStage: 'interest', rule: 'accounts.stages.interest' });
    expect(accountAdvance.evidence).toEqual({ engagedLeads: 3, personas: ['champion', 'economic_buyer'] });
    // Everyone moves, including Dee, who never clicked.
    const all = await h.ctx.db.select().from(leads);
    expect(all.map((l) => l.stage)).toEqual(['interest', 'interest', 'interest', 'interest']);
    expect(rows.filter((r) => r.leadId)).toHaveLength(4);

    // The CRM is told, signed; the failed first delivery was retried.
    const deliveries = await eventually('5 webhooks delivered', async () => (received.filter((r) => r.body).length >= 6 ? received : null), 30_000);
    const wh = new Webhook(h.webhookSecret);
    const types = deliveries.map((d) => (wh.verify(d.body, d.headers) as { type: string }).type);
    expect(types.filter((t) => t === 'account.advanced').length).toBeGreaterThanOrEqual(1);
    expect(new Set(deliveries.map((d) => d.headers['webhook-id'])).size).toBe(5);
    expect(types.filter((t) => t === 'lead.advanced').length).toBeGreaterThanOrEqual(4);
  // Two settle periods one after the other (the champions', then Cy's), plus mail and the CRM's retried delivery.
  }, 2 * (SETTLE_BUDGET_MS + 20_000) + 30_000);
});
