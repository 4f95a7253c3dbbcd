// Every write to the activity log: what `nurture logs` follows.
import { sql } from 'drizzle-orm';
import type { Tx } from './client.js';
import { activity } from './schema.js';

export interface ActivityEntry {
  leadId?: string | null;
  accountId?: string | null;
  email?: string | null;
  accountName?: string | null;
  sequenceId?: string | null;
  stepId?: string | null;
  kind: string;
  detail: string;
  data?: Record<string, unknown>;
  at?: Date;
}

export const ACTIVITY_CHANNEL = 'nurture_activity';

export async function logActivity(tx: Tx, entries: ActivityEntry[]): Promise<void> {
  if (!entries.length) return;
  await tx.insert(activity).values(entries.map((e) => ({ ...e, data: e.data ?? {}, ...(e.at ? { at: e.at } : {}) })));
  // Wakes `nurture logs --follow` at once; delivered only when the transaction commits.
  await tx.execute(sql`select pg_notify(${ACTIVITY_CHANNEL}, '')`);
}
