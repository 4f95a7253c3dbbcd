// The send path's reads and writes, batched across the sends a process has in flight: one statement
// loads many messages, one claims many, one marks many sent and logs them. Each message keeps its own
// guarantees (its claim still re-checks its own row, enrollment and suppression in the statement that
// marks it `sending`); only the round trips are shared. Per message this was three statements, each a
// query build, a socket write and a reply to parse: on this path they cost more than rendering does.
import DataLoader from 'dataloader';
import { sql } from 'drizzle-orm';
import { ACTIVITY_CHANNEL, type ActivityEntry } from './activity.js';
import type { Database } from './client.js';
import { aliasedColumns } from './rows.js';
import { accounts, leads, messages, suppressions } from './schema.js';

export type LoadedMessage = {
  msg: typeof messages.$inferSelect;
  lead: typeof leads.$inferSelect;
  account: typeof accounts.$inferSelect;
  suppressed: typeof suppressions.$inferSelect | null;
};

/** What the claim writes on the row as it becomes `sending`: the message exactly as it goes out. */
export interface Claim {
  id: string;
  at: Date;
  subject: string;
  fromAddress: string;
  templateVersion: string;
  links: unknown[];
  inReplyTo: string | null;
  references: string[];
}

export interface Sent {
  id: string;
  at: Date;
  relayResponse: string;
  providerMessageId: string | null;
  entry: ActivityEntry;
}

export interface SendRows {
  /** The message with its lead, account and the address's suppression; null when there is no such row. */
  load(id: string): Promise<LoadedMessage | null>;
  /** queued → sending, only while the enrollment is not exited and the address not suppressed. */
  claim(claim: Claim): Promise<boolean>;
  /** sending | uncertain → sent, with its log entry (written only if the row moved). */
  markSent(sent: Sent): Promise<void>;
}

/** How many sends one statement carries at most: bounded so one batch's parameters stay small. */
const MAX_BATCH = 200;
/** How long a `sent` waits for others to share its statement. */
const SENT_BATCH_MS = 5;

// Read raw and decoded column by column: drizzle's select rebuilt this four-table query for every batch.
const msgColumns = aliasedColumns(messages, 'm');
const leadColumns = aliasedColumns(leads, 'l');
const accountColumns = aliasedColumns(accounts, 'a');
const suppressedColumns = aliasedColumns(suppressions, 's');

const rowsOf = new WeakMap<Database, SendRows>();

/** One batcher per database pool: the sends of a process share it. */
export function sendRows(database: Database): SendRows {
  let rows = rowsOf.get(database);
  if (!rows) rowsOf.set(database, (rows = createSendRows(database)));
  return rows;
}

function createSendRows({ db, sql: pg }: Database): SendRows {
  // No cache: every call reads or writes the database now; only calls made close together share a
  // statement. A batch closes after the event loop's current turn (every reply and 250 that arrived in
  // it), not after the current microtasks: sends finish one socket event at a time, never together.
  const options = { cache: false, maxBatchSize: MAX_BATCH, batchScheduleFn: (flush: () => void) => setImmediate(flush) } as const;
  // Marking sent waits a little longer: no connection waits on it, and a larger batch is fewer writes.
  const later = { ...options, batchScheduleFn: (flush: () => void) => setTimeout(flush, SENT_BATCH_MS) } as const;

  const loads = new DataLoader<string, LoadedMessage | null>(async (ids) => {
    const found = await db.execute<Record<string, unknown>>(sql`
      select ${msgColumns.list}, ${leadColumns.list}, ${accountColumns.list}, ${suppressedColumns.list}
      from messages m
        join leads l on l.id = m.lead_id
        join accounts a on a.id = l.account_id
        left join suppressions s on s.email = l.email
      where m.id = any(${sql.param([...new Set(ids)])}::uuid[])`);
    const byId = new Map<string, LoadedMessage>();
    for (const r of found) {
      const msg = msgColumns.decode(r);
      byId.set(msg.id, { msg, lead: leadColumns.decode(r), account: accountColumns.decode(r), suppressed: r['s.email'] == null ? null : suppressedColumns.decode(r) });
    }
    return ids.map((id) => byId.get(id) ?? null);
  }, options);

  const claims = new DataLoader<Claim, boolean>(async (batch) => {
    // The batch travels as one JSON parameter, its columns typed by jsonb_to_recordset.
    const claimed = await pg<{ id: string }[]>`
      update messages m set
        status = 'sending', sending_at = v.at, attempts = m.attempts + 1, subject = v.subject,
        from_address = v."fromAddress", template_version = v."templateVersion", links = v.links,
        in_reply_to = v."inReplyTo", "references" = v."references"
      from jsonb_to_recordset(${JSON.stringify(batch)}::jsonb)
        as v(id uuid, at timestamptz, subject text, "fromAddress" text, "templateVersion" text, links jsonb, "inReplyTo" text, "references" jsonb)
      where m.id = v.id and m.status = 'queued'
        -- Completed is fine (its last step is this one); exited (reply, unsubscribe, stage move) is not.
        and exists (select 1 from enrollments e where e.id = m.enrollment_id and e.state <> 'exited')
        and not exists (select 1 from suppressions s where s.email = m.to_address)
      returning m.id`;
    const moved = new Set(claimed.map((r) => r.id));
    return batch.map((c) => moved.has(c.id));
  }, options);

  const sent = new DataLoader<Sent, void>(async (batch) => {
    const values = batch.map(({ entry: e, ...s }) => ({
      ...s,
      leadId: e.leadId ?? null, accountId: e.accountId ?? null, email: e.email ?? null, accountName: e.accountName ?? null,
      sequenceId: e.sequenceId ?? null, stepId: e.stepId ?? null, kind: e.kind, detail: e.detail, data: e.data ?? {}, loggedAt: e.at ?? null,
    }));
    // A 250 that arrives after reconcile called the row uncertain still makes it sent.
    await pg`
      with v as (
        select * from jsonb_to_recordset(${JSON.stringify(values)}::jsonb)
          as v(id uuid, at timestamptz, "relayResponse" text, "providerMessageId" text, "leadId" uuid, "accountId" uuid, email text,
               "accountName" text, "sequenceId" text, "stepId" text, kind text, detail text, data jsonb, "loggedAt" timestamptz)
      ),
      moved as (
        update messages m set status = 'sent', sent_at = v.at, relay_response = v."relayResponse", error = null,
          provider_message_id = coalesce(v."providerMessageId", m.provider_message_id)
        from v where m.id = v.id and m.status in ('sending', 'uncertain')
        returning m.id
      ),
      logged as (
        insert into activity (at, lead_id, account_id, email, account_name, sequence_id, step_id, kind, detail, data)
        select coalesce(v."loggedAt", now()), v."leadId", v."accountId", v.email, v."accountName", v."sequenceId", v."stepId", v.kind, v.detail, v.data
        from v join moved using (id)
        returning 1
      )
      select pg_notify(${ACTIVITY_CHANNEL}, '') from (select 1 from logged limit 1) wake`;
    return batch.map(() => undefined);
  }, later);

  return {
    load: (id) => loads.load(id),
    claim: (c) => claims.load(c),
    markSent: (s) => sent.load(s),
  };
}

