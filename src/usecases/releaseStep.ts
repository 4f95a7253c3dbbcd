// An operator sends a deferred step now: past its window, a cap or a return date (never past a gate),
// with the reason in the log. For the weekend walkthrough and for the rep who knows better than a rule.
import { and, eq, sql } from 'drizzle-orm';
import type { Context } from '../context.js';
import { logActivity } from '../db/activity.js';
import { enrollments, leads } from '../db/schema.js';
import type { Progress } from '../engine/decide.js';
import { enqueueFollowups, noFollowups } from './applyDecision.js';
import { lockLeadWithAccount } from './engineInput.js';
import { UseCaseError } from './errors.js';
import { isEmail } from './inputs.js';
import { notifyEnrollments } from './notifyEnrollments.js';

export interface ReleaseResult {
  released: { sequence: string; step: string; was: string }[];
}

export async function releaseDeferred(ctx: Context, emailInput: string, opts: { step?: string; reason: string; by: string }): Promise<ReleaseResult> {
  const email = emailInput.trim().toLowerCase();
  if (!isEmail(email)) throw new UseCaseError('invalid_email', `"${emailInput}" is not an email address`, 'lead');
  if (!opts.reason.trim()) throw new UseCaseError('invalid_field', 'say why the step goes out now (--reason): it is kept in the log', 'reason');
  const out = noFollowups();
  const released = await ctx.db.transaction(async (tx) => {
    const [ref] = await tx.select({ id: leads.id }).from(leads).where(eq(leads.email, email));
    if (!ref) throw new UseCaseError('unknown_lead', `no lead with email ${email}`, 'lead');
    const la = await lockLeadWithAccount(tx, ref.id);
    if (!la) throw new UseCaseError('unknown_lead', `no lead with email ${email}`, 'lead');
    if (la.lead.status !== 'active') throw new UseCaseError('suppressed', `${email} is ${la.lead.status}: nothing is sent to them`, 'lead');
    const deferred = (
      await tx
        .select({ sequenceId: enrollments.sequenceId, progress: enrollments.progress })
        .from(enrollments)
        .where(and(eq(enrollments.leadId, ref.id), sql`${enrollments.state} = 'active'`, sql`${enrollments.progress} ? 'deferred'`))
    ).flatMap((r) => {
      const d = (r.progress as Partial<Progress>).deferred;
      return d && (!opts.step || d.step === opts.step) ? [{ sequence: r.sequenceId, step: d.step, was: d.why.replace('_', ' ') }] : [];
    });
    if (!deferred.length) {
      throw new UseCaseError('nothing_deferred', `${email} has no step${opts.step ? ` "${opts.step}"` : ''} waiting on a window, a cap or a return date`, opts.step ? 'step' : 'lead');
    }
    const done: ReleaseResult['released'] = [];
    for (const d of deferred) {
      const changed = await notifyEnrollments(ctx, tx, la.lead, la.account, { type: 'release', step: d.step }, out, { sequenceId: d.sequence });
      if (changed) done.push(d);
    }
    await logActivity(
      tx,
      done.map((d) => ({ leadId: la.lead.id, accountId: la.account.id, email, accountName: la.account.name, sequenceId: d.sequence, stepId: d.step, kind: 'released', detail: `released now, past its ${d.was}, by ${opts.by}: ${opts.reason.trim()}`, data: { by: opts.by, reason: opts.reason.trim(), was: d.was } })),
    );
    return done;
  });
  await enqueueFollowups(ctx, out);
  return { released };
}
