// A lead or an account moves to another stage: the advance is recorded with its rule and evidence,
// the old stage's sequences are exited, the new stage's enrolled, and the CRM is told.
import { eq } from 'drizzle-orm';
import { evaluateAccount, leadsToMove } from '../advancement/accounts.js';
import type { Context } from '../context.js';
import { logActivity } from '../db/activity.js';
import type { Tx } from '../db/client.js';
import type { AccountRow, LeadRow } from '../db/facts.js';
import { accounts, advances, leads } from '../db/schema.js';
import type { Followups } from './applyDecision.js';
import { enroll } from './enroll.js';
import { notifyEnrollments } from './notifyEnrollments.js';
import { emitOutbound } from './outbound.js';

/**
 * Moves a lead to another stage: records the advance with its rule and evidence, exits the old stage's
 * sequences, resets the stage's engagement and enrolls the new stage's sequences.
 */
export async function moveStage(ctx: Context, tx: Tx, lead: LeadRow, account: AccountRow, to: string, rule: string, evidence: Record<string, unknown>, out: Followups, opts: { enroll?: boolean } = {}): Promise<LeadRow> {
  const now = ctx.now();
  const [moved] = await tx
    .update(leads)
    .set({ stage: to, stageEnteredAt: now, scoreBase: 0, valuePieces: [], repliedAt: null, updatedAt: now })
    .where(eq(leads.id, lead.id))
    .returning();
  await tx.insert(advances).values({ leadId: lead.id, accountId: account.id, fromStage: lead.stage, toStage: to, rule, evidence, at: now });
  await logActivity(tx, [{ leadId: lead.id, accountId: account.id, email: lead.email, accountName: account.name, kind: 'advanced', detail: `advanced ${lead.stage} → ${to} by ${rule}`, data: evidence }]);
  await emitOutbound(ctx, tx, 'lead.advanced', { lead: { id: lead.id, email: lead.email, persona: lead.persona }, account: { id: account.id, name: account.name }, from: lead.stage, to, rule, evidence }, out);
  await notifyEnrollments(ctx, tx, moved!, account, { type: 'advanced', toStage: to }, out);
  // An import with --no-enroll records the stage and leaves the sequences alone.
  if (opts.enroll !== false) await enroll(ctx, tx, moved!, account, { on: 'stage_entry' }, out);
  return moved!;
}

/**
 * Buying-committee coverage: moves the account (locked by the caller) to the furthest stage its engaged
 * people have earned, and carries its lagging leads along where the funnel says so.
 */
export async function advanceAccount(ctx: Context, tx: Tx, account: AccountRow, out: Followups): Promise<void> {
  const { funnel } = ctx.config;
  if (!Object.keys(funnel.accounts.stages).length) return;
  const members = await tx.select().from(leads).where(eq(leads.accountId, account.id)).orderBy(leads.id);
  const advance = evaluateAccount(funnel, account.stage, members.map((m) => ({ persona: m.persona, stage: m.stage, engaged: m.engagedAt !== null })));
  if (!advance) return;
  const now = ctx.now();
  const [moved] = await tx.update(accounts).set({ stage: advance.to, stageEnteredAt: now, updatedAt: now }).where(eq(accounts.id, account.id)).returning();
  await tx.insert(advances).values({ accountId: account.id, fromStage: advance.from, toStage: advance.to, rule: advance.rule, evidence: advance.evidence, at: now });
  await logActivity(tx, [{ accountId: account.id, accountName: account.name, kind: 'account_advanced', detail: `account ${advance.from ?? '(new)'} → ${advance.to} by ${advance.rule}: ${advance.evidence.engagedLeads} engaged across ${advance.evidence.personas.join(', ')}`, data: advance.evidence }]);
  await emitOutbound(ctx, tx, 'account.advanced', { account: { id: account.id, name: account.name }, from: advance.from, to: advance.to, rule: advance.rule, evidence: advance.evidence }, out);
  if (!advance.moveLeads) return;
  for (const member of leadsToMove(funnel, advance.to, members.filter((m) => m.status === 'active'))) {
    const [locked] = await tx.select().from(leads).where(eq(leads.id, member.id)).for('no key update');
    if (locked && leadsToMove(funnel, advance.to, [locked]).length) await moveStage(ctx, tx, locked, moved!, advance.to, advance.rule, { account: advance.evidence }, out);
  }
}
