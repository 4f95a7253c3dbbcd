// The console's and the read API's queries, one per question, grouped by the aggregate they read.
// Nothing here writes; nothing loops per row.
import { and, asc, desc, eq, gt, inArray, lt, or, sql, type SQL } from 'drizzle-orm';
import type { Tx } from './client.js';
import { accounts, advances, enrollments, leads, messages, sequenceVersions, signals, suppressions } from './schema.js';

// Leads ------------------------------------------------------------------------------------------------

export async function leadByEmail(db: Tx, email: string) {
  const [row] = await db.select({ lead: leads, account: accounts }).from(leads).innerJoin(accounts, eq(accounts.id, leads.accountId)).where(eq(leads.email, email));
  return row ?? null;
}

export async function suppressionOf(db: Tx, email: string) {
  const [row] = await db.select().from(suppressions).where(eq(suppressions.email, email));
  return row ?? null;
}

export const enrollmentsOfLead = (db: Tx, leadId: string) => db.select().from(enrollments).where(eq(enrollments.leadId, leadId)).orderBy(desc(enrollments.enteredAt));

export const messagesOfLead = (db: Tx, leadId: string, limit: number) => db.select().from(messages).where(eq(messages.leadId, leadId)).orderBy(desc(messages.queuedAt), desc(messages.id)).limit(limit);

export const signalsOfLead = (db: Tx, leadId: string, limit: number) =>
  db
    .select({ signal: signals, messageKind: messages.kind })
    .from(signals)
    .leftJoin(messages, eq(messages.id, signals.messageId))
    .where(eq(signals.leadId, leadId))
    .orderBy(desc(signals.occurredAt), desc(signals.id))
    .limit(limit);

export const advancesOfLead = (db: Tx, leadId: string, accountId: string) =>
  db.select().from(advances).where(or(eq(advances.leadId, leadId), and(eq(advances.accountId, accountId), sql`${advances.leadId} is null`))).orderBy(desc(advances.at), desc(advances.id)).limit(200);

/** Leads whose email starts with the text (the console's search box). */
export const leadsMatching = (db: Tx, prefix: string, limit: number) =>
  db
    .select({ email: leads.email, firstName: leads.firstName, lastName: leads.lastName, stage: leads.stage, persona: leads.persona, status: leads.status, account: accounts.name })
    .from(leads)
    .innerJoin(accounts, eq(accounts.id, leads.accountId))
    .where(sql`${leads.email} like ${prefix.replace(/[\\%_]/g, (c) => `\\${c}`) + '%'}`)
    .orderBy(leads.email)
    .limit(limit);

// Accounts ---------------------------------------------------------------------------------------------

export async function accountByKeyOrDomain(db: Tx, keyOrDomain: string) {
  const [row] = await db.select().from(accounts).where(or(eq(accounts.key, keyOrDomain), eq(accounts.domain, keyOrDomain))).orderBy(sql`${accounts.key} = ${keyOrDomain} desc`).limit(1);
  return row ?? null;
}

export const leadsOfAccount = (db: Tx, accountId: string) => db.select().from(leads).where(eq(leads.accountId, accountId)).orderBy(leads.persona, leads.email);

export const accountAdvances = (db: Tx, accountId: string) => db.select().from(advances).where(and(eq(advances.accountId, accountId), sql`${advances.leadId} is null`)).orderBy(desc(advances.at)).limit(100);

/** Accounts by key, a page at a time (the console's list). */
export async function accountsPage(db: Tx, after: string | null, limit: number) {
  return db
    .select({
      key: accounts.key,
      name: accounts.name,
      domain: accounts.domain,
      stage: accounts.stage,
      // Qualified by hand: drizzle writes a column in a select list as a bare "id", which inside the
      // subquery is the lead's own id (every account counted 0).
      leads: sql<number>`(select count(*)::int from ${leads} l where l.account_id = accounts.id)`,
      engaged: sql<number>`(select count(*)::int from ${leads} l where l.account_id = accounts.id and l.engaged_at is not null)`,
    })
    .from(accounts)
    .where(after ? gt(accounts.key, after) : undefined)
    .orderBy(asc(accounts.key))
    .limit(limit);
}

// Messages ---------------------------------------------------------------------------------------------

export interface MessageQuery {
  statuses: string[] | null;
  sequence: string | null;
  since: Date | null;
  /** Keyset: messages queued before this (time, id), newest first. */
  before: { at: Date; id: string } | null;
  limit: number;
}

export async function messagesPage(db: Tx, q: MessageQuery) {
  const where: SQL[] = [
    ...(q.statuses ? [inArray(messages.status, q.statuses)] : []),
    ...(q.sequence ? [eq(messages.sequenceId, q.sequence)] : []),
    ...(q.since ? [sql`${messages.queuedAt} >= ${q.since.toISOString()}::timestamptz`] : []),
    ...(q.before ? [or(lt(messages.queuedAt, q.before.at), and(eq(messages.queuedAt, q.before.at), lt(messages.id, q.before.id)))!] : []),
  ];
  return db
    .select({ m: messages, email: leads.email, accountName: accounts.name })
    .from(messages)
    .innerJoin(leads, eq(leads.id, messages.leadId))
    .innerJoin(accounts, eq(accounts.id, leads.accountId))
    .where(and(...where))
    .orderBy(desc(messages.queuedAt), desc(messages.id))
    .limit(q.limit);
}

/** What the recipient's side said about one message: its signals, newest first. */
export const signalsOfMessages = (db: Tx, ids: string[]) =>
  ids.length ? db.select().from(signals).where(inArray(signals.messageId, ids)).orderBy(desc(signals.occurredAt)).limit(500) : Promise.resolve([]);

// Sequences --------------------------------------------------------------------------------------------

export const sequenceHistory = (db: Tx) =>
  db.select({ sequenceId: sequenceVersions.sequenceId, version: sequenceVersions.version, loadedAt: sequenceVersions.loadedAt, steps: sql<number>`jsonb_array_length(coalesce(${sequenceVersions.definition} -> 'steps', '[]'::jsonb))::int` }).from(sequenceVersions).orderBy(sequenceVersions.sequenceId, desc(sequenceVersions.loadedAt));

/** Enrollments per sequence and state, and how many of the active ones sit on each step. */
export async function enrollmentCounts(db: Tx) {
  const rows = await db.execute<{ sequence_id: string; state: string; cursor: string | null; n: number }>(sql`
    select sequence_id, state, case when state = 'active' then cursor end as cursor, count(*)::int as n
    from enrollments group by 1, 2, 3`);
  return rows.map((r) => ({ sequence: r.sequence_id, state: r.state, step: r.cursor, n: Number(r.n) }));
}

/**
 * Per sequence: its enrolled leads that have advanced a stage since they entered it, and the median
 * days from entering to the first advance after it.
 */
export async function advancementBySequence(db: Tx) {
  const rows = await db.execute<{ sequence_id: string; enrolled: number; advanced: number; median_seconds: number | null }>(sql`
    select e.sequence_id, count(distinct e.lead_id)::int as enrolled,
      count(distinct e.lead_id) filter (where a.at is not null)::int as advanced,
      percentile_cont(0.5) within group (order by extract(epoch from a.at - e.entered_at)) filter (where a.at is not null) as median_seconds
    from enrollments e
    left join lateral (select min(x.at) as at from advances x where x.lead_id = e.lead_id and x.at >= e.entered_at) a on true
    group by e.sequence_id`);
  return rows.map((r) => ({ sequence: r.sequence_id, enrolled: Number(r.enrolled), advanced: Number(r.advanced), medianSeconds: r.median_seconds === null ? null : Number(r.median_seconds) }));
}

// Metrics ----------------------------------------------------------------------------------------------

/**
 * Every figure /metrics reports from Postgres, in one round trip: counts by state and kind over the
 * tables (counters are the rows' counts, so every process reports the same totals).
 */
export async function metricCounts(db: Tx) {
  const rows = await db.execute<{ metric: string; a: string | null; b: string | null; n: number }>(sql`
    select 'messages' as metric, status as a, null as b, count(*)::int as n from messages group by status
    union all
    select 'signals', kind, case when human then 'human' else 'machine' end, count(*)::int from signals group by kind, human
    union all
    select 'signals_provisional', kind, null, count(*)::int from signals where settled_at is null group by kind
    union all
    select 'advances', to_stage, case when lead_id is null then 'account' else 'lead' end, count(*)::int from advances group by to_stage, lead_id is null
    union all
    select 'deferrals', coalesce(data ->> 'why', data ->> 'reason', 'other'), null, count(*)::int from activity where kind in ('defer', 'deferred') group by 2
    union all
    select 'smtp', case kind when 'sent' then '2xx' when 'bounced' then '5xx' when 'uncertain' then 'none'
        else coalesce(substring(detail from '\\m([45])\\d\\d\\M') || 'xx', 'none') end, null, count(*)::int
      from activity where kind in ('sent', 'bounced', 'retry', 'failed', 'uncertain') and (kind <> 'sent' or coalesce(data ->> 'decision', '') = '') group by 2
    union all
    select 'enrollments', sequence_id, state, count(*)::int from enrollments group by sequence_id, state`);
  return rows.map((r) => ({ metric: r.metric, a: r.a, b: r.b, n: Number(r.n) }));
}
