// A step deferred to its send window was planned with the zone and window of that moment. When the lead's
// or account's zone changes, or the window in the config does, its due time is planned again: a wake now,
// which sends if the new window is open and defers to its next opening if not.
import { and, eq, gt, sql } from 'drizzle-orm';
import type { Context } from '../context.js';
import { accounts, enrollments, leads } from '../db/schema.js';
import { needsReplan } from '../engine/decide.js';
import { stateOf, windowOf, zoneOf } from './engineInput.js';
import { runStep } from './runStep.js';

const PAGE = 1000;

export async function replanDeferred(ctx: Context, only: { leadId?: string } = {}): Promise<{ replanned: number }> {
  const now = ctx.now();
  let replanned = 0;
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const rows = await ctx.db
      .select({ row: enrollments, leadZone: leads.timeZone, accountZone: accounts.timeZone })
      .from(enrollments)
      .innerJoin(leads, eq(leads.id, enrollments.leadId))
      .innerJoin(accounts, eq(accounts.id, leads.accountId))
      .where(
        and(
          eq(enrollments.state, 'active'),
          gt(enrollments.nextDueAt, now),
          sql`${enrollments.progress} -> 'deferred' ->> 'why' = 'window'`,
          sql`${enrollments.id} > ${after}`,
          only.leadId ? eq(enrollments.leadId, only.leadId) : undefined,
        ),
      )
      .orderBy(enrollments.id)
      .limit(PAGE);
    for (const { row, leadZone, accountZone } of rows) {
      const seq = ctx.config.sequences.get(row.sequenceId);
      if (!seq) continue;
      const facts = { window: windowOf(ctx, seq), timeZone: zoneOf(ctx, { timeZone: leadZone }, { timeZone: accountZone }) };
      // The step job owns the decision: a wake with this revision, as if its time had come.
      if (needsReplan(stateOf(row), facts, now) && (await runStep(ctx, { enrollmentId: row.id, revision: row.revision })) === 'ran') replanned++;
    }
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1]!.row.id;
  }
  return { replanned };
}
