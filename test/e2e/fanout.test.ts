// A segmented send fans out to a few hundred leads through the fanout queue, in pages, and every
// matching lead gets the email exactly once, even when the fan-out is started twice. A fan-out is a row
// in Postgres before the API answers: it pages from its checkpoint, resumes from it through reconcile
// when its job is gone, and `nurture fanout --status` shows how far each got.
import { and, eq, gt, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fanoutStatus, formatFanOutTable, progressOf } from '../../src/cli/fanout.js';
import { insertFanout } from '../../src/db/fanouts.js';
import { accounts, enrollments, fanouts, leads, messages } from '../../src/db/schema.js';
import { fanOutPage, listFanOuts, type FanOutSummary } from '../../src/usecases/fanOutSegment.js';
import { reconcile } from '../../src/usecases/reconcile.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/e2e' });
});
afterAll(async () => h?.close());

const AUDIENCE = { stage: 'awareness', personas: ['economic_buyer'] };
const rowOf = async (id: string) => (await h.ctx.db.select().from(fanouts).where(eq(fanouts.id, id)))[0]!;
const done = (id: string) => eventually(`fan-out ${id} done`, async () => ((await rowOf(id)).status === 'done' ? rowOf(id) : null), 30_000);

describe('segmented fan-out', () => {
  let firstId = '';

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
    expect(fanout.json).toMatchObject({ fanoutId: expect.stringMatching(/^[0-9a-f-]{36}$/), sequence: 'awareness-newsletter', status: 'running', audience: 320 });
    firstId = fanout.json.fanoutId;
    // Acknowledged means recorded: the row is there when the answer arrives.
    expect(await rowOf(firstId)).toMatchObject({ sequenceId: 'awareness-newsletter', audience: AUDIENCE, total: 320, source: 'api' });
    // A second start (a retried call) enrolls nobody twice.
    const again = await h.post('/v1/sequences/awareness-newsletter/fanout', {});
    expect(again.status).toBe(200);

    const sent = await eventually('300 emails', async () => {
      const m = await h.ctx.db.select().from(messages).where(eq(messages.status, 'sent'));
      return m.length >= 300 ? m : null;
    }, 60_000);
    const [first, second] = [await done(firstId), await done(again.json.fanoutId)];
    const all = await h.ctx.db.select().from(messages);
    expect(all).toHaveLength(300);
    expect(new Set(sent.map((m) => m.toAddress)).size).toBe(300);
    expect(all.every((m) => /^buyer\d+@big\.test$/.test(m.toAddress))).toBe(true);
    expect(h.smtp.mails).toHaveLength(300);
    expect(new Set(h.smtp.mails.map((m) => m.envelopeTo[0])).size).toBe(300);
    const from = h.smtp.mails[0]!.parsed.from!.value[0]!;
    expect(from).toMatchObject({ address: 'maya@handrail.example', name: 'Maya at Handrail' });
    expect(await h.ctx.db.select().from(enrollments)).toHaveLength(300);
    // Both scanned the whole audience; between them every lead was enrolled once.
    expect(first).toMatchObject({ status: 'done', scanned: 320, pages: 1, finishedAt: expect.any(Date) });
    expect(second).toMatchObject({ status: 'done', scanned: 320 });
    expect(first.enrolled + second.enrolled).toBe(300);
  });

  it('pages by key: each page moves the checkpoint in its row, and the rest follows from there', async () => {
    const f = await insertFanout(h.ctx.db, { sequenceId: 'awareness-newsletter', sequenceVersion: 'v', audience: AUDIENCE, total: 320, source: 'cli', startedAt: new Date() });
    // The page queues the next one: the worker waits until the checkpoint has been read.
    const fanouts = h.worker('fanout');
    await fanouts.pause();
    const first = await fanOutPage(h.ctx, f.id, 100);
    expect(first).toMatchObject({ status: 'running', scanned: 100, enrolled: 0 });
    expect(first.next).toMatch(/^[0-9a-f-]{36}$/);
    expect(await rowOf(f.id)).toMatchObject({ afterLeadId: first.next, scanned: 100, pages: 1, status: 'running' });
    fanouts.resume();
    // The worker takes the next page from the checkpoint (its job carries only the fan-out's id).
    expect(await done(f.id)).toMatchObject({ scanned: 320, pages: 2, enrolled: 0 });
    // A page of a finished fan-out does nothing.
    expect(await fanOutPage(h.ctx, f.id, 100)).toMatchObject({ status: 'finished', scanned: 0 });
  });

  it('resumes from its checkpoint when its job is gone, each page once even when two jobs run it together', async () => {
    const [big] = await h.ctx.db.select().from(accounts).where(eq(accounts.key, 'big.test'));
    const fresh = await h.ctx.db
      .insert(leads)
      .values(Array.from({ length: 60 }, (_, i) => ({ accountId: big!.id, email: `new${i}@big.test`, firstName: `New${i}`, persona: 'economic_buyer', stage: 'awareness' })))
      .returning({ id: leads.id });
    // A crash after the page that ended at `checkpoint`: the leads up to it were done by that page.
    const sorted = fresh.map((l) => l.id).sort();
    const checkpoint = sorted[19]!;
    const owed = sorted.slice(20);
    const f = await insertFanout(h.ctx.db, { sequenceId: 'awareness-newsletter', sequenceVersion: 'v', audience: AUDIENCE, total: 380, source: 'api', startedAt: new Date() });
    await h.ctx.db.update(fanouts).set({ afterLeadId: checkpoint, scanned: 1, pages: 1 }).where(eq(fanouts.id, f.id));

    // No job exists for it (Redis lost it, or it failed for good): reconcile queues it from the row…
    expect((await reconcile(h.ctx)).fanouts).toBe(1);
    // …and a stalled job given back at the same time runs alongside: they take turns on the row's lock.
    await Promise.all([fanOutPage(h.ctx, f.id, 10), fanOutPage(h.ctx, f.id, 10)]);
    const row = await done(f.id);

    const enrolled = await h.ctx.db.select({ leadId: enrollments.leadId }).from(enrollments).where(inArray(enrollments.leadId, sorted));
    expect(enrolled.map((e) => e.leadId).sort()).toEqual(owed);
    const beyond = await h.ctx.db.select({ id: leads.id }).from(leads).where(and(eq(leads.stage, 'awareness'), eq(leads.persona, 'economic_buyer'), gt(leads.id, checkpoint)));
    expect(row).toMatchObject({ status: 'done', enrolled: owed.length, scanned: 1 + beyond.length });
    await eventually('40 more emails', async () => ((await h.ctx.db.select().from(messages)).length >= 340 ? true : null), 30_000);
    expect((await reconcile(h.ctx)).fanouts).toBe(0);
  });

  it('fails a fan-out whose sequence is no longer configured, and says why', async () => {
    const f = await insertFanout(h.ctx.db, { sequenceId: 'retired-newsletter', sequenceVersion: 'v', audience: AUDIENCE, total: 0, source: 'api', startedAt: new Date() });
    await reconcile(h.ctx);
    const row = await eventually('marked failed', async () => ((await rowOf(f.id)).status === 'failed' ? rowOf(f.id) : null));
    expect(row.error).toBe('sequence "retired-newsletter" is no longer in the configuration');
    expect(row.finishedAt).toBeInstanceOf(Date);
  });

  it('nurture fanout --status: each fan-out with its progress, as a table or JSON lines', async () => {
    const lines: string[] = [];
    expect(await fanoutStatus({ databaseUrl: h.databaseUrl, json: true, write: (l) => lines.push(l) })).toBe(0);
    const rows = lines.map((l) => JSON.parse(l) as FanOutSummary);
    expect(rows).toHaveLength(5);
    expect(rows.find((r) => r.id === firstId)).toMatchObject({ sequence: 'awareness-newsletter', status: 'done', total: 320, scanned: 320, source: 'api', checkpoint: expect.any(String) });
    expect(rows.filter((r) => r.status === 'failed')).toHaveLength(1);

    const table: string[] = [];
    await fanoutStatus({ databaseUrl: h.databaseUrl, json: false, write: (l) => table.push(l) });
    expect(table[0]).toMatch(/^id\s+sequence\s+started\s+progress\s+status$/);
    expect(table.find((l) => l.startsWith(firstId))).toMatch(/awareness-newsletter\s+\S+Z\s+320 of 320 \(100%\), \d+ enrolled\s+done \S+Z$/);
    expect(table.some((l) => /failed: sequence "retired-newsletter" is no longer in the configuration$/.test(l))).toBe(true);
    expect(formatFanOutTable(await listFanOuts(h.ctx))).toHaveLength(6);
  });

  it('shows progress against the audience counted at the start, never past 100 % or complete while running', () => {
    expect(progressOf({ scanned: 2000, total: 3000, enrolled: 1998, status: 'running' })).toBe('2,000 of 3,000 (66%), 1,998 enrolled');
    expect(progressOf({ scanned: 3100, total: 3000, enrolled: 3100, status: 'running' })).toBe('3,100 of 3,100 (99%), 3,100 enrolled');
    expect(progressOf({ scanned: 0, total: 0, enrolled: 0, status: 'done' })).toBe('0 of 0 (100%), 0 enrolled');
  });
});
