// Loads the facts the pure engine needs about one lead, in as few round trips as it takes.
import { and, eq, gte, inArray, isNotNull, sql } from 'drizzle-orm';
import { scoreAt } from '../advancement/score.js';
import { parseDuration } from '../config/duration.js';
import type { Funnel } from '../config/schema.js';
import type { Engagement, Profile } from '../engine/conditions.js';
import type { Tx } from './client.js';
import { inIds } from './params.js';
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
    .select(signalFacts)
    .from(signals)
    .where(and(eq(signals.leadId, lead.id), countedSignal, gte(signals.occurredAt, run ? minDate(run.since, lead.stageEnteredAt) : lead.stageEnteredAt)));
  return engagementOf(funnel, lead, rows, now, run);
}

/**
 * The signals loadEngagement reads, for many leads in one query (a fan-out page, a wake's page): each
 * lead's since its stage began, or since its own run began (`runSince`) when that is earlier. Each lead
 * has its own bound: one enrollment from last year in a page must not read a year of everyone's signals.
 * Keyed by lead; leads without any are absent.
 */
export async function loadEngagementOfLeads(tx: Tx, leadIds: string[], runSince?: Map<string, Date>): Promise<Map<string, SignalFact[]>> {
  const by = new Map<string, SignalFact[]>();
  if (!leadIds.length) return by;
  // The runs' starts as a row set, built once per statement (a jsonb parameter looked into per signal
  // would be parsed again for each under a generic plan). A lead it leaves out joins null, and least()
  // passes over nulls: its stage's start alone.
  const runs = JSON.stringify([...(runSince ?? [])].map(([lead, since]) => ({ lead, since })));
  const rows = await tx
    .select({ leadId: signals.leadId, ...signalFacts })
    .from(signals)
    .innerJoin(leads, eq(leads.id, signals.leadId))
    .leftJoin(sql`jsonb_to_recordset(${runs}::jsonb) as run(lead uuid, since timestamptz)`, sql`run.lead = ${signals.leadId}`)
    .where(and(inIds(signals.leadId, leadIds), countedSignal, sql`${signals.occurredAt} >= least(${leads.stageEnteredAt}, run.since)`));
  for (const { leadId, ...r } of rows) if (leadId) by.set(leadId, [...(by.get(leadId) ?? []), r]);
  return by;
}

const signalFacts = { kind: signals.kind, stepId: signals.stepId, sequenceId: signals.sequenceId, tag: signals.tag, at: signals.occurredAt };
export type SignalFact = { kind: string; stepId: string | null; sequenceId: string | null; tag: string | null; at: Date };
/** Only settled human opens and clicks count toward engagement. */
const countedSignal = and(eq(signals.human, true), isNotNull(signals.settledAt), inArray(signals.kind, ['open', 'click']));

/** The engagement facts of a lead from its signals (as loaded above): pure. */
export function engagementOf(funnel: Funnel, lead: LeadRow, rows: SignalFact[], now: Date, run?: { sequenceId: string; since: Date }): Engagement {
  const inRun = (r: SignalFact) => run && r.sequenceId === run.sequenceId && r.at >= run.since && r.stepId;
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
  const rows = await loadRecentSendsOf(tx, funnel, [{ id: lead.id, accountId: lead.accountId }], now);
  return { lead: rows.filter((r) => r.leadId === lead.id).map((r) => r.at), account: rows.map((r) => r.at) };
}

/**
 * The sends caps count for these leads (one query for a whole fan-out page); none without caps. With an
 * account cap, every lead's at their accounts (the cap keeps that to a few a period); with only a lead
 * cap, only their own: an account uncapped may have sent to thousands of its people this week.
 */
export async function loadRecentSendsOf(tx: Tx, funnel: Funnel, people: { id: string; accountId: string }[], now: Date): Promise<{ leadId: string; accountId: string; at: Date }[]> {
  const periods = [funnel.caps.lead?.per, funnel.caps.account?.per].filter((p): p is string => !!p).map(parseDuration);
  if (!periods.length || !people.length) return [];
  const since = new Date(now.getTime() - Math.max(...periods));
  const whose = funnel.caps.account ? inArray(leads.accountId, [...new Set(people.map((p) => p.accountId))]) : inIds(messages.leadId, people.map((p) => p.id));
  return tx
    .select({ leadId: messages.leadId, accountId: leads.accountId, at: sql<Date>`coalesce(${messages.sentAt}, ${messages.queuedAt})`.mapWith((v) => new Date(v)) })
    .from(messages)
    .innerJoin(leads, eq(leads.id, messages.leadId))
    .where(and(whose, inArray(messages.status, ['queued', 'sending', 'sent', 'uncertain']), sql`coalesce(${messages.sentAt}, ${messages.queuedAt}) > ${since.toISOString()}`));
}

const unique = <T>(xs: T[]) => [...new Set(xs)];
const minDate = (a: Date, b: Date) => (a < b ? a : b);
