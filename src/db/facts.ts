// Loads the facts the pure engine needs about one lead, in as few round trips as it takes.
import { and, eq, gte, inArray, isNotNull, sql } from 'drizzle-orm';
import { scoreAt } from '../advancement/score.js';
import { parseDuration } from '../config/duration.js';
import type { Funnel } from '../config/schema.js';
import type { Engagement, Profile } from '../engine/conditions.js';
import type { Tx } from './client.js';
import { accounts, enrollments, leads, messages, signals } from './schema.js';

export type LeadRow = typeof leads.$inferSelect;
export type AccountRow = typeof accounts.$inferSelect;
export type EnrollmentRow = typeof enrollments.$inferSelect;

export function profileOf(lead: LeadRow, account: AccountRow): Profile {
  return {
    lead: { email: lead.email, firstName: lead.firstName, lastName: lead.lastName, title: lead.title, persona: lead.persona, stage: lead.stage, timeZone: lead.timeZone, attributes: lead.attributes },
    account: { name: account.name, domain: account.domain, industry: account.industry, tier: account.tier, country: account.country, stage: account.stage, attributes: account.attributes },
  };
}

/** Settled human engagement in the lead's current stage; step-level facts only for the given sequence run. */
export async function loadEngagement(tx: Tx, funnel: Funnel, lead: LeadRow, now: Date, run?: { sequenceId: string; since: Date }): Promise<Engagement> {
  const rows = await tx
    .select({ kind: signals.kind, stepId: signals.stepId, sequenceId: signals.sequenceId, tag: signals.tag, at: signals.occurredAt })
    .from(signals)
    .where(and(eq(signals.leadId, lead.id), eq(signals.human, true), isNotNull(signals.settledAt), inArray(signals.kind, ['open', 'click']), gte(signals.occurredAt, run ? minDate(run.since, lead.stageEnteredAt) : lead.stageEnteredAt)));
  const inRun = (r: (typeof rows)[number]) => run && r.sequenceId === run.sequenceId && r.at >= run.since && r.stepId;
  return {
    score: scoreAt(funnel, lead.scoreBase, now),
    valuePieces: lead.valuePieces.length,
    replied: lead.repliedAt !== null,
    // A human click implies the email was opened, even when images were blocked.
    openedSteps: unique(rows.filter(inRun).map((r) => r.stepId!)),
    clickedSteps: unique(rows.filter((r) => r.kind === 'click' && inRun(r)).map((r) => r.stepId!)),
    clickedTags: unique(rows.filter((r) => r.kind === 'click' && r.tag && r.at >= lead.stageEnteredAt).map((r) => r.tag!)),
  };
}

/** Sends that count against frequency caps: everything handed to the relay or about to be. */
export async function loadRecentSends(tx: Tx, funnel: Funnel, lead: LeadRow, now: Date): Promise<{ lead: Date[]; account: Date[] }> {
  const periods = [funnel.caps.lead?.per, funnel.caps.account?.per].filter((p): p is string => !!p).map(parseDuration);
  if (!periods.length) return { lead: [], account: [] };
  const since = new Date(now.getTime() - Math.max(...periods));
  const rows = await tx
    .select({ leadId: messages.leadId, at: sql<Date>`coalesce(${messages.sentAt}, ${messages.queuedAt})`.mapWith((v) => new Date(v)) })
    .from(messages)
    .innerJoin(leads, eq(leads.id, messages.leadId))
    .where(and(eq(leads.accountId, lead.accountId), inArray(messages.status, ['queued', 'sending', 'sent', 'uncertain']), sql`coalesce(${messages.sentAt}, ${messages.queuedAt}) > ${since.toISOString()}`));
  return { lead: rows.filter((r) => r.leadId === lead.id).map((r) => r.at), account: rows.map((r) => r.at) };
}

const unique = <T>(xs: T[]) => [...new Set(xs)];
const minDate = (a: Date, b: Date) => (a < b ? a : b);
