// A segmented send fans out to a few hundred leads through the fanout queue, in pages, and every
// matching lead gets the email exactly once, even when the fan-out is started twice.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accounts, enrollments, leads, messages } from '../../src/db/schema.js';
import { fanOutPage } from '../../src/usecases/fanOutSegment.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/e2e' });
});
afterAll(async () => h?.close());

describe('segmented fan-out', () => {
  it('sends once to every lead in the audience and to nobody outside it', async () => {
    const [big, small] = await h.ctx.db
      .insert(accounts)
      .values([{ key: 'big.test', name: 'Big Co', tier: 'enterprise' }, { key: 'small.test', name: 'Small Co', tier: 'smb' }])
      .returning();
    const rows = [
      ...Array.from({ length: 300 }, (_, i) => ({ accountId: big!.id, email: `buyer${i}@big.test`, firstName: `Buyer${i}`, persona: 'economic_buyer', stage: 'awareness' })),
      ...Array.from({ length: 20 }, (_, i) => ({ accountId: small!.id, email: `buyer${i}@small.test`, firstName: `Small${i}`, persona: 'economic_buyer', stage: 'awareness' })),
      ...Array.from({ length: 20 }, (_, i) => ({ accountId: big!.id, email: `champ${i}@big.test`, firstName: `Champ${i}`, persona: 'champion', stage: 'awareness' })),
      ...Array.from({ length: 20 }, (_, i) => ({ accountId: big!.id, email: `later${i}@big.test`, firstName: `Later${i}`, persona: 'economic_buyer', stage: 'interest' })),
    ];
    await h.ctx.db.insert(leads).values(rows);

    const fanout = await h.post('/v1/sequences/awareness-newsletter/fanout', {});
    expect(fanout.status).toBe(200);
    // A second start (a retried call) enrolls nobody twice.
    expect((await h.post('/v1/sequences/awareness-newsletter/fanout', {})).status).toBe(200);

    const sent = await eventually('300 emails', async () => {
      const m = await h.ctx.db.select().from(messages).where(eq(messages.status, 'sent'));
      return m.length >= 300 ? m : null;
    }, 60_000);
    await new Promise((r) => setTimeout(r, 500));
    const all = await h.ctx.db.select().from(messages);
    expect(all).toHaveLength(300);
    expect(new Set(sent.map((m) => m.toAddress)).size).toBe(300);
    expect(all.every((m) => /^buyer\d+@big\.test$/.test(m.toAddress))).toBe(true);
    expect(h.smtp.mails).toHaveLength(300);
    expect(new Set(h.smtp.mails.map((m) => m.envelopeTo[0])).size).toBe(300);
    const from = h.smtp.mails[0]!.parsed.from!.value[0]!;
    expect(from).toMatchObject({ address: 'maya@handrail.example', name: 'Maya at Handrail' });
    expect(await h.ctx.db.select().from(enrollments)).toHaveLength(300);
  });

  it('pages by key: a page of 100 hands the next page its checkpoint', async () => {
    const first = await fanOutPage(h.ctx, { sequenceId: 'awareness-newsletter', runId: 'paging', afterLeadId: null }, 100);
    expect(first.scanned).toBe(100);
    // Everyone in the audience is enrolled already: scanning again enrolls nobody.
    expect(first.enrolled).toBe(0);
    expect(first.next).toMatch(/^[0-9a-f-]{36}$/);
  });
});
