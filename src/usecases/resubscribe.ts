// A person takes a suppression back: the lead asked to hear from us again, or a bounce turned out to be
// the relay's mistake. Only with a reason, which the log keeps; the lead is not enrolled again here
// (the next trigger or stage entry does that, as for anyone).
import { eq } from 'drizzle-orm';
import type { Context } from '../context.js';
import { logActivity } from '../db/activity.js';
import { accounts, leads, suppressions } from '../db/schema.js';
import { UseCaseError } from './errors.js';
import { normaliseEmail } from './leadTimeline.js';

export async function resubscribeLead(ctx: Pick<Context, 'db' | 'now'>, emailInput: string, opts: { reason: string; by: string }): Promise<{ email: string; was: string }> {
  const email = normaliseEmail(emailInput, 'lead');
  const reason = opts.reason.trim();
  if (!reason) throw new UseCaseError('invalid_field', 'say why this person may be mailed again: the reason is kept in the log', 'reason');
  if (reason.length > 500) throw new UseCaseError('invalid_field', 'keep the reason under 500 characters', 'reason');
  return ctx.db.transaction(async (tx) => {
    const [lead] = await tx.select().from(leads).where(eq(leads.email, email)).for('no key update');
    if (!lead) throw new UseCaseError('unknown_lead', `no lead with email ${email}`, 'lead');
    const [gone] = await tx.delete(suppressions).where(eq(suppressions.email, email)).returning();
    if (!gone && lead.status === 'active') throw new UseCaseError('not_suppressed', `${email} is not suppressed: nothing to take back`, 'lead');
    const was = gone ? `${gone.reason} (${gone.source})` : lead.status;
    await tx.update(leads).set({ status: 'active', updatedAt: ctx.now() }).where(eq(leads.id, lead.id));
    const [account] = await tx.select({ name: accounts.name }).from(accounts).where(eq(accounts.id, lead.accountId));
    await logActivity(tx, [{ leadId: lead.id, accountId: lead.accountId, email, accountName: account?.name ?? null, kind: 'resubscribed', detail: `resubscribed by ${opts.by} (was ${was}): ${reason}`, data: { by: opts.by, reason, was } }]);
    return { email, was };
  });
}
