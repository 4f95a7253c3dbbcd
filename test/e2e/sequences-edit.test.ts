// A live edit mid-flight through real Redis, Postgres and SMTP: step 1 has gone out and step 2 waits
// (deferred by the lead cap) when the YAML changes under it: step 2 removed, step 3's template changed.
// On the next wake step 1 is not sent again, step 2 is skipped, and step 3 goes out once, as edited.
import { resolve } from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { activity, enrollments, messages, sequenceVersions } from '../../src/db/schema.js';
import { loadSequenceVersions, planEdit } from '../../src/usecases/planEdit.js';
import { reconcile } from '../../src/usecases/reconcile.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

let offset = 0;
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/sequences-edit', now: () => new Date(Date.now() + offset) });
});
afterAll(async () => h?.close());

const sentRows = () => h.ctx.db.select().from(messages).where(eq(messages.status, 'sent'));

describe('a live edit mid-flight', () => {
  it('never resends a sent step, skips a removed one, and sends the edited one once', async () => {
    const v1 = h.ctx.config.sequences.get('three-notes')!;
    const res = await h.post('/v1/triggers', {
      type: 'lead.upsert',
      lead: { email: 'lee@zeta.test', firstName: 'Lee', persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Zeta Logistics', domain: 'zeta.test' } },
    });
    expect(res.status).toBe(200);

    // Step 1 goes out; step 2 meets the one-a-day cap and is deferred to a day after step 1.
    const hello = await eventually('step 1', async () => h.smtp.mails[0]);
    expect(hello.parsed.subject).toBe('Something for the Zeta Logistics onboarding team');
    const deferral = await eventually('step 2 deferred', async () => (await h.ctx.db.select().from(activity).where(eq(activity.kind, 'defer')))[0]);
    expect(deferral).toMatchObject({ stepId: 'nudge', data: expect.objectContaining({ why: 'cap_lead' }) });
    await eventually('step 1 marked sent', async () => (await sentRows()).length === 1);
    const [before] = await h.ctx.db.select().from(enrollments);
    expect(before).toMatchObject({ state: 'active', cursor: 'nudge', sequenceVersion: v1.version, progress: { sent: ['hello'] } });

    // The edit is deployed: the new version is stored (as createContext does) and the config swapped.
    const next = loadConfig(resolve('test/fixtures/config/sequences-edit-v2'), { templatesDir: resolve('templates') });
    const v2 = next.sequences.get('three-notes')!;
    expect(v2.version).not.toBe(v1.version);
    await h.ctx.db.insert(sequenceVersions).values({ sequenceId: v2.id, version: v2.version, definition: { ...v2 } }).onConflictDoNothing();

    // What planEdit says the edit will do, before anything wakes.
    expect(await planEdit(h.ctx.db, await loadSequenceVersions(h.ctx.db), next)).toEqual([
      { sequence: 'three-notes', version: { from: v1.version, to: v2.version }, inFlight: 1, byStep: [{ step: 'nudge', enrollments: 1, effect: 'skips to last' }] },
    ]);
    h.ctx.config.sequences = next.sequences;

    // A day passes; Redis loses the delayed job, reconcile wakes the enrollment from Postgres.
    offset += 86_400_000 + 60_000;
    await h.ctx.queues.step.drain(true);
    expect((await reconcile(h.ctx)).steps).toBe(1);

    const last = await eventually('step 3', async () => h.smtp.mails[1]);
    expect(last.parsed.subject).toBe('The handoff playbook: from signed contract to first value');
    const after = await eventually('the enrollment completes', async () => {
      const [e] = await h.ctx.db.select().from(enrollments);
      return e?.state === 'completed' ? e : null;
    });
    expect(after).toMatchObject({ sequenceVersion: v2.version, exitReason: 'completed', progress: { sent: ['hello', 'last'] } });
    await eventually('step 3 marked sent', async () => (await sentRows()).length === 2);

    // Nothing else goes out, however long we wait or however often reconcile runs.
    offset += 86_400_000;
    await reconcile(h.ctx);
    await new Promise((r) => setTimeout(r, 500));
    const rows = await h.ctx.db.select().from(messages).orderBy(messages.queuedAt);
    expect(rows.map((m) => `${m.stepId}:${m.templateName}:${m.status}`)).toEqual(['hello:intro-note:sent', 'last:value-playbook:sent']);
    expect(h.smtp.mails).toHaveLength(2);
    expect(h.smtp.mails.filter((m) => m.parsed.subject === hello.parsed.subject)).toHaveLength(1);
    expect(await h.ctx.db.select().from(activity).where(eq(activity.stepId, 'nudge'))).toHaveLength(1);
  });
});
