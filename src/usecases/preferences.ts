// The preference centre: the person chooses, from a link in any message (signed token, like unsubscribe),
// to pause all mail for a while, to hear only from their rep (segmented sequences stop), to stop everything,
// or to hear everything again. Reading the page changes nothing; each choice is a POST, recorded as a
// `preference` signal with its evidence. The engine honours the choice through the lead's fields
// (mailPreference, pausedUntil): audience refuses segmented sequences, decide defers or ends steps.
import { eq } from 'drizzle-orm';
import type { Context } from '../context.js';
import { logActivity } from '../db/activity.js';
import { leads, messages, signals } from '../db/schema.js';
import { verifyToken } from '../mail/tracking.js';
import { UseCaseError } from './errors.js';
import { lockLeadWithAccount } from './engineInput.js';
import { recordSignals } from './recordSignals.js';
import { resubscribeLead } from './resubscribe.js';

export type PreferenceChoice = { kind: 'pause'; days: number } | { kind: 'rep_only' } | { kind: 'unsubscribe' } | { kind: 'all' };

export interface Preferences {
  email: string;
  /** all | rep_only */
  preference: string;
  pausedUntil: Date | null;
  /** active | unsubscribed | bounced | complained */
  status: string;
}

export const PAUSE_DAYS = [7, 30, 90] as const;

export function parseChoice(form: Record<string, string>): PreferenceChoice {
  switch (form.choice) {
    case 'pause': {
      const days = Number(form.days);
      if (!(PAUSE_DAYS as readonly number[]).includes(days)) throw new UseCaseError('invalid_field', `pause for ${PAUSE_DAYS.join(', ')} days`, 'days');
      return { kind: 'pause', days };
    }
    case 'rep_only':
    case 'unsubscribe':
    case 'all':
      return { kind: form.choice };
    default:
      throw new UseCaseError('invalid_field', 'choose pause, rep_only, unsubscribe or all', 'choice');
  }
}

async function messageOf(ctx: Context, token: string): Promise<{ id: string; leadId: string } | null> {
  const id = verifyToken(ctx.settings.trackingSecret, 'preferences', token);
  if (!id) return null;
  const [m] = await ctx.db.select({ id: messages.id, leadId: messages.leadId }).from(messages).where(eq(messages.id, id));
  return m ?? null;
}

/** What the page shows. Reads only. */
export async function preferencesFor(ctx: Context, token: string): Promise<Preferences | null> {
  const m = await messageOf(ctx, token);
  if (!m) return null;
  const [lead] = await ctx.db.select().from(leads).where(eq(leads.id, m.leadId));
  return lead ? { email: lead.email, preference: lead.mailPreference, pausedUntil: lead.pausedUntil, status: lead.status } : null;
}

export async function choosePreference(ctx: Context, token: string, choice: PreferenceChoice, evidence: { ip: string | null; userAgent: string | null }): Promise<Preferences | null> {
  const m = await messageOf(ctx, token);
  if (!m) return null;
  const now = ctx.now();
  const proof = { via: 'preference_page', ip: evidence.ip, userAgent: evidence.userAgent?.slice(0, 256) ?? null };
  if (choice.kind === 'unsubscribe') {
    // The same path as the unsubscribe link: suppression, exits, the CRM told.
    await recordSignals(ctx, [{ sourceId: `preferences-unsubscribe-${m.id}-${now.getTime()}`, kind: 'unsubscribe', messageRowId: m.id, human: true, reason: 'preference_page', at: now, evidence: proof }]);
    return preferencesFor(ctx, token);
  }
  if (choice.kind === 'all') {
    // Only the person, here, takes their own unsubscribe back (an operator does it with a reason elsewhere).
    const [lead] = await ctx.db.select({ email: leads.email, status: leads.status }).from(leads).where(eq(leads.id, m.leadId));
    if (lead?.status === 'unsubscribed') await resubscribeLead(ctx, lead.email, { reason: 'the person chose to hear from us again on the preference page', by: 'the person (preference page)' });
  }
  const set = choice.kind === 'pause' ? { pausedUntil: new Date(now.getTime() + choice.days * 86_400_000) } : choice.kind === 'rep_only' ? { mailPreference: 'rep_only', pausedUntil: null } : { mailPreference: 'all', pausedUntil: null };
  await ctx.db.transaction(async (tx) => {
    const la = await lockLeadWithAccount(tx, m.leadId);
    if (!la) return;
    await tx.update(leads).set({ ...set, updatedAt: now }).where(eq(leads.id, m.leadId));
    const what = choice.kind === 'pause' ? `paused all mail for ${choice.days} days` : choice.kind === 'rep_only' ? 'keeps only their rep\'s one-to-one mail' : 'wants all mail again';
    await tx.insert(signals).values({
      sourceId: `preference-${m.id}-${now.getTime()}`,
      leadId: m.leadId,
      messageId: m.id,
      kind: 'preference',
      human: true,
      reason: choice.kind,
      occurredAt: now,
      settledAt: now,
      evidence: { ...proof, choice: choice.kind, ...(set.pausedUntil ? { until: set.pausedUntil.toISOString() } : {}) },
    });
    await logActivity(tx, [{ leadId: m.leadId, accountId: la.account.id, email: la.lead.email, accountName: la.account.name, kind: 'preference', detail: `preference page: ${what}`, data: { choice: choice.kind } }]);
  });
  return preferencesFor(ctx, token);
}
