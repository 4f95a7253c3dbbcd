// A fan-out page's reads and writes. Its leads with their accounts are read as raw rows and decoded by
// each column's own drizzle decoder in a plain loop (drizzle's select mapped a page's 34,000 cells
// through per-cell iterators: a tenth of a fan-out's CPU and its largest source of garbage). Its
// enrollments (at their first decision) and message rows are each written in one statement whatever the
// page's size (its activity goes through logActivity, which does the same): the rows travel as one JSON
// parameter unpacked by json_to_recordset, where a 1,000-row VALUES list through the query builder cost
// more CPU than everything else the page does (10,000 parameters, each wrapped and type-checked). The
// record's columns are named as the objects' keys are ("leadId"), so rows are stringified as they are,
// and the text is read as json, not converted to jsonb first (Postgres parses it once either way).
import { sql, type SQL } from 'drizzle-orm';
import type { Tx } from './client.js';
import { inIds } from './params.js';
import { rowDecoder } from './rows.js';
import { accounts, leads } from './schema.js';

const leadOf = rowDecoder(leads);
const accountOf = rowDecoder(accounts);

export type PageLead = { lead: typeof leads.$inferSelect; account: typeof accounts.$inferSelect };

/**
 * The page's leads among `ids` that still match `where`, in id order, locked (for no key update), each
 * with its account (read, not locked).
 */
export async function lockPageLeads(tx: Tx, ids: string[], where: SQL | undefined): Promise<PageLead[]> {
  const raw = await tx.execute<Record<string, unknown>>(sql`select ${leads}.* from ${leads} where ${inIds(leads.id, ids)} and ${where ?? sql`true`} order by ${leads.id} for no key update`);
  const page = [...raw].map(leadOf);
  if (!page.length) return [];
  const accountIds = [...new Set(page.map((l) => l.accountId))];
  const byId = new Map([...(await tx.execute<Record<string, unknown>>(sql`select * from ${accounts} where ${inIds(accounts.id, accountIds)}`))].map((r) => [r.id as string, accountOf(r)]));
  return page.map((lead) => ({ lead, account: byId.get(lead.accountId)! }));
}

export interface PageEnrollment {
  id: string;
  leadId: string;
  sequenceId: string;
  sequenceVersion: string;
  cursor: string | null;
  /** ISO text (see isoOnce). */
  nextDueAt: string | null;
  revision: number;
  progress: Record<string, unknown>;
  stageEnteredAt: string;
}

/**
 * Inserts live enrollments; one the lead already has live in the sequence is skipped (the one-live index,
 * as enroll() does). Returns the ids inserted.
 */
export async function insertLiveEnrollments(tx: Tx, rows: PageEnrollment[]): Promise<string[]> {
  if (!rows.length) return [];
  const inserted = await tx.execute<{ id: string }>(sql`
    insert into enrollments (id, lead_id, sequence_id, sequence_version, state, cursor, next_due_at, revision, progress, stage_entered_at)
    select x.id, x."leadId", x."sequenceId", x."sequenceVersion", 'active', x.cursor, x."nextDueAt", x.revision, x.progress, x."stageEnteredAt"
    from json_to_recordset(${JSON.stringify(rows)}::json)
      as x(id uuid, "leadId" uuid, "sequenceId" text, "sequenceVersion" text, cursor text, "nextDueAt" timestamptz, revision int, progress jsonb, "stageEnteredAt" timestamptz)
    on conflict (lead_id, sequence_id) where state = 'active' do nothing
    returning id`);
  return [...inserted].map((r) => r.id);
}

/** An enrollment's columns after a decision (enrollmentChanges), with the revision it was decided at. */
export interface EnrollmentUpdate {
  id: string;
  revision: number;
  state: string;
  cursor: string | null;
  nextDueAt: Date | null;
  exitReason: string | null;
  progress: Record<string, unknown>;
  sequenceVersion: string;
  endedAt?: Date;
}

/**
 * Moves enrollments on in one statement, each only if it is still at the revision it was decided at
 * (a writer that moved it first wins), bumping the revision. Returns the ids moved.
 */
export async function updateEnrollments(tx: Tx, rows: EnrollmentUpdate[]): Promise<string[]> {
  if (!rows.length) return [];
  const moved = await tx.execute<{ id: string }>(sql`
    update enrollments e set state = x.state, cursor = x.cursor, next_due_at = x."nextDueAt", exit_reason = x."exitReason",
      progress = x.progress, sequence_version = x."sequenceVersion", revision = x.revision + 1, ended_at = coalesce(x."endedAt", e.ended_at)
    from json_to_recordset(${JSON.stringify(rows)}::json)
      as x(id uuid, revision int, state text, cursor text, "nextDueAt" timestamptz, "exitReason" text, progress jsonb, "sequenceVersion" text, "endedAt" timestamptz)
    where e.id = x.id and e.revision = x.revision
    returning e.id`);
  return [...moved].map((r) => r.id);
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
    select x.id, x."enrollmentId", x."leadId", x."sequenceId", x."stepId", 'queued', x."messageId", x."templateName", x."toAddress", x.kind
    from json_to_recordset(${JSON.stringify(rows)}::json)
      as x(id uuid, "enrollmentId" uuid, "leadId" uuid, "sequenceId" text, "stepId" text, "messageId" text, "templateName" text, "toAddress" text, kind text)
    on conflict (enrollment_id, step_id) do nothing
    returning id`);
  return [...inserted].map((r) => r.id);
}
