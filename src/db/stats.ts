// The reporting queries, one per section of `nurture stats`. Each is a single aggregate over the tables;
// nothing loops per lead. Counts come back as int, times as seconds; rounding is the use case's business.
//
// Scope: `since` picks messages by when they went out (their signals count whenever they came) and stage
// visits by when they began; lead and account counts are the present. `sequence` narrows messages (and
// the personas' leads to those enrolled in it).
import { sql, type SQL } from 'drizzle-orm';
import type { Tx } from './client.js';

export interface StatsScope {
  since: Date | null;
  sequence: string | null;
}

export interface FunnelRow {
  sequence: string;
  /** null on the sequence's total row. */
  step: string | null;
  /** Delivered: the relay answered 250 and no bounce came back since. */
  sent: number;
  bounced: number;
  /** Distinct messages a person opened (a human click counts as an open). */
  humanOpens: number;
  /** Distinct messages opened by a machine (Apple MPP prefetch, a proxy, a scanner). */
  machineOpens: number;
  /** Distinct messages with a human click. */
  humanClicks: number;
  /** Distinct messages whose links a bot followed (security scanners, HEAD checks, bursts). */
  botClicks: number;
  /** Distinct messages answered by a person (out-of-office replies are not counted). */
  replies: number;
  /** Distinct messages whose unsubscribe was used. */
  unsubscribes: number;
}

export interface PersonaRow {
  persona: string;
  leads: number;
  sent: number;
  humanOpens: number;
  humanClicks: number;
  replies: number;
  unsubscribes: number;
}

export interface StageRow {
  stage: string;
  leadsNow: number;
  entered: number;
  advanced: number;
  medianSecondsToAdvance: number | null;
}

export interface AccountStatsRow {
  account: string;
  key: string;
  stage: string | null;
  leads: number;
  engagedLeads: number;
  engagedByPersona: Record<string, number>;
}

const iso = (d: Date) => d.toISOString();

/** Messages that reached the relay (delivered or refused), in scope. `m` is the messages alias. */
function messageScope(s: StatsScope): SQL {
  return sql.join(
    [
      sql`m.status in ('sent', 'bounced')`,
      ...(s.since ? [sql`coalesce(m.sent_at, m.queued_at) >= ${iso(s.since)}::timestamptz`] : []),
      ...(s.sequence ? [sql`m.sequence_id = ${s.sequence}`] : []),
    ],
    sql` and `,
  );
}

/**
 * Per sequence and step (and a total row per sequence, by grouping sets), in distinct messages: a message
 * opened twice is one open. A human click counts as a human open too — images are often blocked, and the
 * engine's `opened:` condition reads it the same way.
 */
export async function funnelBySequenceStep(db: Tx, s: StatsScope): Promise<FunnelRow[]> {
  const rows = await db.execute<Record<string, unknown>>(sql`
    with funnel as (
      select m.sequence_id, m.step_id, grouping(m.step_id) as is_total, min(coalesce(m.sent_at, m.queued_at)) as first_at,
        count(distinct m.id) filter (where m.status = 'sent')::int as sent,
        count(distinct m.id) filter (where m.status = 'bounced')::int as bounced,
        count(distinct m.id) filter (where g.human and g.settled_at is not null and g.kind in ('open', 'click'))::int as human_opens,
        count(distinct m.id) filter (where not g.human and g.kind = 'open')::int as machine_opens,
        count(distinct m.id) filter (where g.human and g.settled_at is not null and g.kind = 'click')::int as human_clicks,
        count(distinct m.id) filter (where not g.human and g.kind = 'click')::int as bot_clicks,
        count(distinct m.id) filter (where g.human and g.settled_at is not null and g.kind = 'reply')::int as replies,
        count(distinct m.id) filter (where g.kind = 'unsubscribe')::int as unsubscribes
      from messages m
      left join signals g on g.message_id = m.id
      where ${messageScope(s)}
      group by grouping sets ((m.sequence_id, m.step_id), (m.sequence_id))
    )
    select f.*, pos.ord
    from funnel f
    -- Steps in the order of the sequence's latest definition; steps since removed follow, by first send.
    left join lateral (
      select st.ord
      from sequence_versions v
      cross join lateral jsonb_array_elements(v.definition -> 'steps') with ordinality as st(step, ord)
      where v.sequence_id = f.sequence_id and st.step ->> 'id' = f.step_id
      order by v.loaded_at desc
      limit 1
    ) pos on true
    order by f.sequence_id, f.is_total desc, pos.ord nulls last, f.first_at, f.step_id
  `);
  return rows.map((r) => ({
    sequence: String(r.sequence_id),
    step: Number(r.is_total) === 1 ? null : String(r.step_id),
    sent: Number(r.sent),
    bounced: Number(r.bounced),
    humanOpens: Number(r.human_opens),
    machineOpens: Number(r.machine_opens),
    humanClicks: Number(r.human_clicks),
    botClicks: Number(r.bot_clicks),
    replies: Number(r.replies),
    unsubscribes: Number(r.unsubscribes),
  }));
}

/** Per persona: its leads, and what the messages sent to them drew (distinct messages, as above). */
export async function funnelByPersona(db: Tx, s: StatsScope): Promise<PersonaRow[]> {
  const rows = await db.execute<Record<string, unknown>>(sql`
    select l.persona,
      count(distinct l.id)::int as leads,
      count(distinct m.id) filter (where m.status = 'sent')::int as sent,
      count(distinct m.id) filter (where g.human and g.settled_at is not null and g.kind in ('open', 'click'))::int as human_opens,
      count(distinct m.id) filter (where g.human and g.settled_at is not null and g.kind = 'click')::int as human_clicks,
      count(distinct m.id) filter (where g.human and g.settled_at is not null and g.kind = 'reply')::int as replies,
      count(distinct m.id) filter (where g.kind = 'unsubscribe')::int as unsubscribes
    from leads l
    left join messages m on m.lead_id = l.id and ${messageScope(s)}
    left join signals g on g.message_id = m.id
    ${s.sequence ? sql`where exists (select 1 from enrollments e where e.lead_id = l.id and e.sequence_id = ${s.sequence})` : sql``}
    group by l.persona
    order by leads desc, l.persona
  `);
  return rows.map((r) => ({
    persona: String(r.persona),
    leads: Number(r.leads),
    sent: Number(r.sent),
    humanOpens: Number(r.human_opens),
    humanClicks: Number(r.human_clicks),
    replies: Number(r.replies),
    unsubscribes: Number(r.unsubscribes),
  }));
}

/**
 * Per stage, from each lead's visits: a visit begins when the lead is created in a stage or advances into
 * it, and ends at the lead's next advance. `entered` and `advanced` count distinct leads whose visit began
 * in scope; the median is over those visits that ended by moving forward. Given the funnel's stage order,
 * forward means later in it; without one, any move out counts. Every stage given comes back, in that order,
 * then any other stage the data holds, by when it was first entered.
 */
export async function stageFlow(db: Tx, s: Pick<StatsScope, 'since'>, order: readonly string[] | null): Promise<StageRow[]> {
  const stageArray = order?.length ? sql`array[${sql.join(order.map((o) => sql`${o}`), sql`, `)}]::text[]` : sql`array[]::text[]`;
  const forward = order?.length
    ? sql`coalesce(array_position(${stageArray}, v.left_to) > array_position(${stageArray}, v.stage), v.left_to is not null)`
    : sql`v.left_to is not null`;
  const inScope = s.since ? sql`v.entered_at >= ${iso(s.since)}::timestamptz` : sql`true`;
  const rows = await db.execute<Record<string, unknown>>(sql`
    with starts as (
      select l.id as lead_id, coalesce(fa.from_stage, l.stage) as stage, l.created_at as at, 0::bigint as ord
      from leads l
      left join lateral (select a.from_stage from advances a where a.lead_id = l.id order by a.at, a.id limit 1) fa on true
      union all
      select a.lead_id, a.to_stage, a.at, a.id from advances a where a.lead_id is not null
    ),
    visits as (
      select lead_id, stage, at as entered_at,
        lead(at) over w as left_at,
        lead(stage) over w as left_to
      from starts
      window w as (partition by lead_id order by at, ord)
    ),
    flow as (
      select v.stage, min(v.entered_at) as first_at,
        count(distinct v.lead_id) filter (where ${inScope})::int as entered,
        count(distinct v.lead_id) filter (where ${inScope} and ${forward})::int as advanced,
        percentile_cont(0.5) within group (order by extract(epoch from v.left_at - v.entered_at))
          filter (where ${inScope} and ${forward}) as median_seconds
      from visits v
      group by v.stage
    ),
    now_in as (select stage, count(*)::int as n from leads group by stage),
    -- Every stage of the funnel, even one nobody has reached, and any stage the data still holds.
    every_stage as (select unnest(${stageArray}) as stage union select stage from flow union select stage from now_in)
    select e.stage, coalesce(n.n, 0) as leads_now, coalesce(f.entered, 0) as entered,
      coalesce(f.advanced, 0) as advanced, f.median_seconds
    from every_stage e
    left join flow f on f.stage = e.stage
    left join now_in n on n.stage = e.stage
    order by array_position(${stageArray}, e.stage) nulls last, f.first_at nulls last, e.stage
  `);
  return rows.map((r) => ({
    stage: String(r.stage),
    leadsNow: Number(r.leads_now),
    entered: Number(r.entered),
    advanced: Number(r.advanced),
    medianSecondsToAdvance: r.median_seconds === null || r.median_seconds === undefined ? null : Number(r.median_seconds),
  }));
}

/** Accounts by how many of their people have engaged (engaged_at set, in scope), most first. */
export async function engagedAccounts(db: Tx, s: Pick<StatsScope, 'since'>, limit: number): Promise<AccountStatsRow[]> {
  const engaged = s.since ? sql`l.engaged_at >= ${iso(s.since)}::timestamptz` : sql`l.engaged_at is not null`;
  const rows = await db.execute<Record<string, unknown>>(sql`
    with per_persona as (
      select l.account_id, l.persona, count(*)::int as leads, count(*) filter (where ${engaged})::int as engaged
      from leads l
      group by l.account_id, l.persona
    )
    select a.name, a.key, a.stage, sum(p.leads)::int as leads, sum(p.engaged)::int as engaged,
      coalesce(jsonb_object_agg(p.persona, p.engaged) filter (where p.engaged > 0), '{}'::jsonb) as by_persona
    from accounts a
    join per_persona p on p.account_id = a.id
    group by a.id
    order by engaged desc, leads desc, a.name
    limit ${limit}
  `);
  return rows.map((r) => ({
    account: String(r.name),
    key: String(r.key),
    stage: r.stage === null || r.stage === undefined ? null : String(r.stage),
    leads: Number(r.leads),
    engagedLeads: Number(r.engaged),
    engagedByPersona: (typeof r.by_persona === 'string' ? JSON.parse(r.by_persona) : r.by_persona) as Record<string, number>,
  }));
}

/** Has anyone ever been enrolled in this sequence (whether or not the YAML still has it)? */
export async function anyoneEnrolledIn(db: Tx, sequence: string): Promise<boolean> {
  const rows = await db.execute<{ found: number }>(sql`select 1 as found from enrollments where sequence_id = ${sequence} limit 1`);
  return rows.length > 0;
}

/** Every sequence anyone was ever enrolled in, by id. */
export async function enrolledSequences(db: Tx): Promise<string[]> {
  const rows = await db.execute<{ id: string }>(sql`select distinct sequence_id as id from enrollments order by 1`);
  return rows.map((r) => r.id);
}
