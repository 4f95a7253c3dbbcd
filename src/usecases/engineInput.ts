// Turns rows into what the pure engine takes: the enrollment state and the facts of its lead.
import { and, eq } from 'drizzle-orm';
import type { Sequence } from '../config/schema.js';
import type { Context } from '../context.js';
import type { Tx } from '../db/client.js';
import { loadEngagement, loadRecentSends, profileOf, type AccountRow, type LeadRow } from '../db/facts.js';
import { accounts, leads, sequenceVersions } from '../db/schema.js';
import type { Decision, EnrollmentState, Facts, Progress } from '../engine/decide.js';
import type { EnrollmentRow } from '../db/facts.js';

/** The lead's zone, else the account's, else the funnel's default. */
export const zoneOf = (ctx: Pick<Context, 'config'>, lead: Pick<LeadRow, 'timeZone'>, account: Pick<AccountRow, 'timeZone'>): string =>
  lead.timeZone ?? account.timeZone ?? ctx.config.funnel.defaults.timeZone;

/** The sequence's send window, else the funnel's default; null sends any time. */
export const windowOf = (ctx: Pick<Context, 'config'>, seq: Pick<Sequence, 'window'>) => seq.window ?? ctx.config.funnel.defaults.window ?? null;

/** The person's choice on the preference page, as the engine reads it. */
export const preferenceOf = (lead: Pick<LeadRow, 'mailPreference' | 'pausedUntil'>): NonNullable<Facts['preference']> => ({ repOnly: lead.mailPreference === 'rep_only', pausedUntil: lead.pausedUntil });

export function stateOf(row: EnrollmentRow): EnrollmentState {
  return {
    state: row.state as EnrollmentState['state'],
    cursor: row.cursor,
    nextDueAt: row.nextDueAt,
    exitReason: row.exitReason,
    progress: { sent: [], ...(row.progress as Partial<Progress>) },
  };
}

export async function loadFacts(ctx: Context, tx: Tx, seq: Sequence, row: EnrollmentRow, lead: LeadRow, account: AccountRow): Promise<Facts> {
  const { funnel } = ctx.config;
  const now = ctx.now();
  const [engagement, recentSends, priorStepIds] = await Promise.all([
    loadEngagement(tx, funnel, lead, now, { sequenceId: seq.id, since: row.enteredAt }),
    loadRecentSends(tx, funnel, lead, now),
    row.sequenceVersion === seq.version ? Promise.resolve(undefined) : priorSteps(tx, seq.id, row.sequenceVersion),
  ]);
  return factsOf(ctx, seq, lead, account, { engagement, recentSends, ...(priorStepIds ? { priorStepIds } : {}) });
}

/**
 * The sends caps count, by lead and by account, as a batch decides one enrollment after another (a
 * fan-out page, step jobs run together): a send decided for one counts against the caps of the next.
 */
export class RecentSends {
  private readonly byLead = new Map<string, Date[]>();
  private readonly byAccount = new Map<string, Date[]>();
  constructor(loaded: { leadId: string; accountId: string; at: Date }[]) {
    for (const r of loaded) this.add(r.leadId, r.accountId, r.at);
  }
  of(leadId: string, accountId: string): Facts['recentSends'] {
    return { lead: listOf(this.byLead, leadId), account: listOf(this.byAccount, accountId) };
  }
  /** Counts the sends a decision makes, at `at`. */
  count(d: Decision, leadId: string, accountId: string, at: Date): void {
    for (const c of d.commands) if (c.type === 'send') this.add(leadId, accountId, at);
  }
  private add(leadId: string, accountId: string, at: Date): void {
    listOf(this.byLead, leadId).push(at);
    listOf(this.byAccount, accountId).push(at);
  }
}
const listOf = (m: Map<string, Date[]>, k: string) => m.get(k) ?? m.set(k, []).get(k)!;

/** The facts of one lead from what was loaded for it (alone, or with a whole fan-out page): pure. */
export function factsOf(ctx: Pick<Context, 'config'>, seq: Sequence, lead: LeadRow, account: AccountRow, loaded: Pick<Facts, 'engagement' | 'recentSends' | 'priorStepIds'>): Facts {
  return {
    timeZone: zoneOf(ctx, lead, account),
    window: windowOf(ctx, seq),
    caps: ctx.config.funnel.caps,
    recentSends: loaded.recentSends,
    engagement: loaded.engagement,
    profile: profileOf(lead, account),
    preference: preferenceOf(lead),
    ...(loaded.priorStepIds ? { priorStepIds: loaded.priorStepIds } : {}),
  };
}

export async function priorSteps(tx: Tx, sequenceId: string, version: string): Promise<string[] | undefined> {
  const [v] = await tx
    .select({ definition: sequenceVersions.definition })
    .from(sequenceVersions)
    .where(and(eq(sequenceVersions.sequenceId, sequenceId), eq(sequenceVersions.version, version)));
  return (v?.definition as Sequence | undefined)?.steps.map((s) => s.id);
}

/** A lead and its account, unlocked (to lock both, see lockLeadWithAccount). */
export async function loadLeadAndAccount(tx: Tx, leadId: string): Promise<{ lead: LeadRow; account: AccountRow } | null> {
  const [row] = await tx.select({ lead: leads, account: accounts }).from(leads).innerJoin(accounts, eq(accounts.id, leads.accountId)).where(eq(leads.id, leadId));
  return row ?? null;
}

/**
 * Row locks here are FOR NO KEY UPDATE: inserting a message or an enrollment takes a KEY SHARE lock on
 * its lead through the foreign key, and FOR UPDATE would make that wait on us (a deadlock with a step
 * job mid-send). We never change key columns, so the weaker lock is enough to serialise our writers.
 *
 * Locks an account, then one of its leads. Every transaction that locks both takes them in this order
 * (account first), so two signals for people at one account can't deadlock.
 */
export async function lockLeadWithAccount(tx: Tx, leadId: string): Promise<{ lead: LeadRow; account: AccountRow } | null> {
  const [ref] = await tx.select({ accountId: leads.accountId }).from(leads).where(eq(leads.id, leadId));
  if (!ref) return null;
  const [account] = await tx.select().from(accounts).where(eq(accounts.id, ref.accountId)).for('no key update');
  const [lead] = await tx.select().from(leads).where(eq(leads.id, leadId)).for('no key update');
  return lead && account ? { lead, account } : null;
}
