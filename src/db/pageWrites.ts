// A fan-out page's writes: its enrollments (at their first decision), message rows and activity, each
// table in one statement whatever the page's size. The rows travel as one JSON parameter and are
// unpacked by jsonb_to_recordset: building a 1,000-row VALUES list through the query builder cost more
// CPU than everything else the page does (10,000 parameters, each wrapped and type-checked).
import { sql, type AnyColumn, type SQL } from 'drizzle-orm';
import { ACTIVITY_CHANNEL, type ActivityEntry } from './activity.js';
import type { Tx } from './client.js';

export interface PageEnrollment {
  id: string;
  leadId: string;
  sequenceId: string;
  sequenceVersion: string;
  cursor: string | null;
  nextDueAt: Date | null;
  revision: number;
  progress: Record<string, unknown>;
  stageEnteredAt: Date;
}

/**
 * Inserts live enrollments; one the lead already has live in the sequence is skipped (the one-live index,
 * as enroll() does). Returns the ids inserted.
 */
export async function insertLiveEnrollments(tx: Tx, rows: PageEnrollment[]): Promise<string[]> {
  if (!rows.length) return [];
  const inserted = await tx.execute<{ id: string }>(sql`
    insert into enrollments (id, lead_id, sequence_id, sequence_version, state, cursor, next_due_at, revision, progress, stage_entered_at)
    select x.id, x.lead_id, x.sequence_id, x.sequence_version, 'active', x.cursor, x.next_due_at, x.revision, x.progress, x.stage_entered_at
    from jsonb_to_recordset(${JSON.stringify(rows.map(snake))}::jsonb)
      as x(id uuid, lead_id uuid, sequence_id text, sequence_version text, cursor text, next_due_at timestamptz, revision int, progress jsonb, stage_entered_at timestamptz)
    on conflict (lead_id, sequence_id) where state = 'active' do nothing
    returning id`);
  return [...inserted].map((r) => r.id);
}

export interface PageMessage {
  id: string;
  enrollmentId: string;
  leadId: string;
  sequenceId: string;
  stepId: string;
  messageId: string;
  templateName: string;
  toAddress: string;
  kind: string;
}

/** Inserts queued messages, one per enrollment and step (a second is dropped): the ids inserted. */
export async function insertQueuedMessages(tx: Tx, rows: PageMessage[]): Promise<string[]> {
  if (!rows.length) return [];
  const inserted = await tx.execute<{ id: string }>(sql`
    insert into messages (id, enrollment_id, lead_id, sequence_id, step_id, status, message_id, template_name, to_address, kind)
    select x.id, x.enrollment_id, x.lead_id, x.sequence_id, x.step_id, 'queued', x.message_id, x.template_name, x.to_address, x.kind
    from jsonb_to_recordset(${JSON.stringify(rows.map(snake))}::jsonb)
      as x(id uuid, enrollment_id uuid, lead_id uuid, sequence_id text, step_id text, message_id text, template_name text, to_address text, kind text)
    on conflict (enrollment_id, step_id) do nothing
    returning id`);
  return [...inserted].map((r) => r.id);
}

/** logActivity for many entries: one insert, and one notify for `nurture logs --follow`. */
export async function logPageActivity(tx: Tx, entries: ActivityEntry[]): Promise<void> {
  if (!entries.length) return;
  const rows = entries.map((e) => snake({ leadId: e.leadId ?? null, accountId: e.accountId ?? null, email: e.email ?? null, accountName: e.accountName ?? null, sequenceId: e.sequenceId ?? null, stepId: e.stepId ?? null, kind: e.kind, detail: e.detail, data: e.data ?? {}, at: e.at ?? null }));
  await tx.execute(sql`
    insert into activity (at, lead_id, account_id, email, account_name, sequence_id, step_id, kind, detail, data)
    select coalesce(x.at, now()), x.lead_id, x.account_id, x.email, x.account_name, x.sequence_id, x.step_id, x.kind, x.detail, x.data
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
      as x(at timestamptz, lead_id uuid, account_id uuid, email text, account_name text, sequence_id text, step_id text, kind text, detail text, data jsonb)`);
  await tx.execute(sql`select pg_notify(${ACTIVITY_CHANNEL}, '')`);
}

/** Column names as Postgres spells them (jsonb_to_recordset matches keys to the column list). */
function snake(o: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[snakeNames.get(k) ?? snakeNames.set(k, k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)).get(k)!] = v;
  return out;
}
const snakeNames = new Map<string, string>();

/** `column in (ids)` with the ids as one parameter, not one each (a page's thousand). */
export const inIds = (column: AnyColumn, ids: string[]): SQL => sql`${column} in (select value::uuid from jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb))`;
