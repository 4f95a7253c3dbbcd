// The hot path of tracking: what a burst of hits needs from Postgres in one query, and the evidence that
// changes nothing yet (machines, provisional verdicts) written with its log lines in one statement.
// Written as fixed SQL on the driver, not built per call: the text never changes with the batch's size,
// so each connection prepares it once, and nothing is assembled row by row on the event loop (drizzle's
// multi-row insert was most of the CPU a batch cost). The rest of the writes to signals live with the use
// cases that decide them (recordSignals, settleSignals) under a lead's lock.
import type postgres from 'postgres';
// Timestamps cross as ISO text both ways: the pool is drizzle's, which turns postgres.js's date parsing
// and serialising off for every query on it.
import { ACTIVITY_CHANNEL } from './activity.js';
import { isoOnce } from './params.js';

/** A message as a hit on it is judged and recorded, with whom it went to (for the log). */
export interface HitFacts {
  id: string;
  leadId: string;
  sequenceId: string;
  stepId: string;
  kind: string;
  sentAt: Date | null;
  links: { id: string; url: string; tag: string | null }[];
  email: string | null;
  accountId: string | null;
  accountName: string | null;
  /** Clicks recorded on it since the look-back, with their verdicts: what a hit is judged against. */
  clicks: { signalId: number; linkId: string | null; at: Date; human: boolean; reason: string; ip: string | null; userAgent: string | null }[];
}

/**
 * One query for a batch, however large: the messages, their leads and accounts, and the clicks on them
 * since `clicksSince` (none when null).
 */
export async function loadHitFacts(sql: postgres.Sql, messageIds: string[], clicksSince: Date | null): Promise<Map<string, HitFacts>> {
  if (!messageIds.length) return new Map();
  const rows = await sql<
    { id: string; lead_id: string; sequence_id: string; step_id: string; kind: string; sent_at: string | Date | null; links: HitFacts['links']; email: string | null; account_id: string | null; account_name: string | null; clicks: { signalId: number; linkId: string | null; at: string; human: boolean; reason: string; ip: string | null; userAgent: string | null }[] | null }[]
  >`
    select m.id, m.lead_id, m.sequence_id, m.step_id, m.kind, m.sent_at, m.links, l.email, a.id as account_id, a.name as account_name,
      (select json_agg(json_build_object('signalId', s.id, 'linkId', s.link_id, 'at', s.occurred_at, 'human', s.human, 'reason', s.reason, 'ip', s.evidence->>'ip', 'userAgent', s.evidence->>'userAgent'))
         from signals s where s.message_id = m.id and s.kind = 'click' and s.occurred_at >= ${clicksSince?.toISOString() ?? null}::timestamptz) as clicks
    from messages m
    left join leads l on l.id = m.lead_id
    left join accounts a on a.id = l.account_id
    where m.id = any(${messageIds}::uuid[])`;
  const out = new Map<string, HitFacts>();
  for (const r of rows) {
    out.set(r.id, {
      id: r.id,
      leadId: r.lead_id,
      sequenceId: r.sequence_id,
      stepId: r.step_id,
      kind: r.kind,
      sentAt: r.sent_at === null ? null : new Date(r.sent_at),
      links: r.links,
      email: r.email,
      accountId: r.account_id,
      accountName: r.account_name,
      clicks: (r.clicks ?? []).map((c) => ({ ...c, at: new Date(c.at) })),
    });
  }
  return out;
}

export type LeadName = { email: string; accountId: string | null; accountName: string | null };

/** Leads' addresses and accounts, for log lines of signals no message named. */
export async function loadLeadNames(sql: postgres.Sql, leadIds: string[]): Promise<Map<string, LeadName>> {
  const rows = await sql<{ id: string; email: string; account_id: string | null; account_name: string | null }[]>`
    select l.id, l.email, a.id as account_id, a.name as account_name from leads l left join accounts a on a.id = l.account_id where l.id = any(${leadIds}::uuid[])`;
  return new Map(rows.map((r) => [r.id, { email: r.email, accountId: r.account_id, accountName: r.account_name }]));
}

/** A signal that changes nothing when it arrives, and the activity line that logs it. */
export interface InertSignal {
  sourceId: string;
  leadId: string;
  messageId: string | null;
  sequenceId: string | null;
  stepId: string | null;
  kind: string;
  human: boolean;
  reason: string;
  linkId: string | null;
  tag: string | null;
  occurredAt: Date;
  evidence: Record<string, unknown>;
  settledAt: Date | null;
  settlesAt: Date | null;
  log: { accountId: string | null; email: string | null; accountName: string | null; detail: string; data: Record<string, unknown> };
}

/**
 * Inserts the signals (idempotent on source_id), an activity line for each one that was new, and wakes
 * log followers: one statement, so one commit, and all or nothing. Returns the source ids inserted.
 */
export async function insertInertSignals(sql: postgres.Sql, rows: InertSignal[]): Promise<Set<string>> {
  if (!rows.length) return new Set();
  // A batch's times repeat (its settle time, hits in the same millisecond): each converted once.
  const iso = isoOnce();
  const json = JSON.stringify(
    rows.map((r) => ({
      source_id: r.sourceId,
      lead_id: r.leadId,
      message_id: r.messageId,
      sequence_id: r.sequenceId,
      step_id: r.stepId,
      kind: r.kind,
      human: r.human,
      reason: r.reason,
      link_id: r.linkId,
      tag: r.tag,
      occurred_at: iso(r.occurredAt),
      evidence: r.evidence,
      settled_at: r.settledAt && iso(r.settledAt),
      settles_at: r.settlesAt && iso(r.settlesAt),
      account_id: r.log.accountId,
      email: r.log.email,
      account_name: r.log.accountName,
      detail: r.log.detail,
      data: r.log.data,
    })),
  );
  const [result] = await sql<{ inserted: string[] }[]>`
    with input as (
      select * from rows from (jsonb_to_recordset(${json}::jsonb) as (
        source_id text, lead_id uuid, message_id uuid, sequence_id text, step_id text, kind text, human boolean, reason text,
        link_id text, tag text, occurred_at timestamptz, evidence jsonb, settled_at timestamptz, settles_at timestamptz,
        account_id uuid, email text, account_name text, detail text, data jsonb)) with ordinality as t(
        source_id, lead_id, message_id, sequence_id, step_id, kind, human, reason, link_id, tag, occurred_at, evidence,
        settled_at, settles_at, account_id, email, account_name, detail, data, n)
    ), fresh as (
      insert into signals (source_id, lead_id, message_id, sequence_id, step_id, kind, human, reason, link_id, tag, occurred_at, evidence, settled_at, settles_at)
      select source_id, lead_id, message_id, sequence_id, step_id, kind, human, reason, link_id, tag, occurred_at, evidence, settled_at, settles_at
      from input order by n
      on conflict (source_id) do nothing
      returning source_id
    ), logged as (
      insert into activity (at, lead_id, account_id, email, account_name, sequence_id, step_id, kind, detail, data)
      select i.occurred_at, i.lead_id, i.account_id, i.email, i.account_name, i.sequence_id, i.step_id, i.kind, i.detail, i.data
      from input i join fresh f on f.source_id = i.source_id order by i.n
      returning 1
    )
    select array(select source_id from fresh) as inserted,
      (select pg_notify(${ACTIVITY_CHANNEL}, '') where exists (select 1 from logged)) as notified`;
  return new Set(result!.inserted);
}
