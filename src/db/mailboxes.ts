// Every write to mailbox_watch (each watched inbox's checkpoint and health) and mailbox_copies (Sent copies
// waiting to be filed), and their reads.
import { and, asc, eq, isNull, lt, sql } from 'drizzle-orm';
import type { Tx } from './client.js';
import { mailboxCopies, mailboxWatch } from './schema.js';

export type MailboxWatchRow = typeof mailboxWatch.$inferSelect;

export async function watchRow(db: Tx, address: string): Promise<MailboxWatchRow | null> {
  const [row] = await db.select().from(mailboxWatch).where(eq(mailboxWatch.address, address));
  return row ?? null;
}

export async function allWatchRows(db: Tx): Promise<MailboxWatchRow[]> {
  return db.select().from(mailboxWatch).orderBy(asc(mailboxWatch.address));
}

/** The watcher of `address` is (re)starting, held by `holder`. */
export async function watchStarting(db: Tx, address: string, folder: string, holder: string): Promise<void> {
  await db
    .insert(mailboxWatch)
    .values({ address, folder, holder, state: 'connecting' })
    .onConflictDoUpdate({ target: mailboxWatch.address, set: { holder, state: sql`case when ${mailboxWatch.state} = 'retrying' then 'retrying' else 'connecting' end`, updatedAt: sql`now()` } });
}

/**
 * Where to continue in the folder: the checkpoint when it is for this folder and UIDVALIDITY, else (a first
 * watch, another folder, or a folder the server renumbered) `fresh`, which is also stored.
 */
export async function checkpointFor(db: Tx, address: string, folder: string, uidValidity: bigint, fresh: () => Promise<number>): Promise<{ lastUid: number; reset: boolean }> {
  const row = await watchRow(db, address);
  if (row && row.folder === folder && row.uidValidity === uidValidity) return { lastUid: row.lastUid, reset: false };
  const lastUid = await fresh();
  await db.update(mailboxWatch).set({ folder, uidValidity, lastUid, updatedAt: sql`now()` }).where(eq(mailboxWatch.address, address));
  return { lastUid, reset: row?.uidValidity != null };
}

/** Moves the checkpoint past `uid` (never back), for the folder generation it was read in. */
export async function advanceCheckpoint(db: Tx, address: string, uidValidity: bigint, uid: number): Promise<void> {
  await db
    .update(mailboxWatch)
    .set({ lastUid: sql`greatest(${mailboxWatch.lastUid}, ${uid})`, updatedAt: sql`now()` })
    .where(and(eq(mailboxWatch.address, address), eq(mailboxWatch.uidValidity, uidValidity)));
}

/** Connected and watching; returns how many failures in a row it recovered from. */
export async function watchConnected(db: Tx, address: string, holder: string): Promise<number> {
  const [before] = await db.select({ failures: mailboxWatch.failures }).from(mailboxWatch).where(eq(mailboxWatch.address, address));
  await db
    .update(mailboxWatch)
    .set({ state: 'watching', holder, connectedAt: sql`now()`, failures: 0, nextRetryAt: null, loggedError: null, loggedErrorAt: null, updatedAt: sql`now()` })
    .where(eq(mailboxWatch.address, address));
  return before?.failures ?? 0;
}

/**
 * A failed connection or session, to be retried at `nextRetryAt`. Returns whether this error should go to
 * the activity log: a new error, or the same one an hour after it was last logged (a retry storm is one line).
 */
export async function watchFailed(db: Tx, address: string, error: string, nextRetryAt: Date, now: Date): Promise<{ log: boolean; failures: number }> {
  // Parameters in raw SQL go as text: cast them, the column types are not inferred inside CASE.
  const at = sql`${now.toISOString()}::timestamptz`;
  const hourAgo = sql`${new Date(now.getTime() - 3_600_000).toISOString()}::timestamptz`;
  const err = sql`${error}::text`;
  const [row] = await db
    .update(mailboxWatch)
    .set({
      state: 'retrying',
      lastError: error,
      lastErrorAt: now,
      failures: sql`${mailboxWatch.failures} + 1`,
      nextRetryAt,
      loggedError: sql`case when ${mailboxWatch.loggedError} is distinct from ${err} or ${mailboxWatch.loggedErrorAt} < ${hourAgo} then ${err} else ${mailboxWatch.loggedError} end`,
      loggedErrorAt: sql`case when ${mailboxWatch.loggedError} is distinct from ${err} or ${mailboxWatch.loggedErrorAt} < ${hourAgo} then ${at} else ${mailboxWatch.loggedErrorAt} end`,
      updatedAt: sql`now()`,
    })
    .where(eq(mailboxWatch.address, address))
    .returning({ loggedAt: mailboxWatch.loggedErrorAt, failures: mailboxWatch.failures });
  return { log: !!row && row.loggedAt?.getTime() === now.getTime(), failures: row?.failures ?? 0 };
}

export async function watchStopped(db: Tx, address: string, holder: string): Promise<void> {
  await db.update(mailboxWatch).set({ state: 'stopped', updatedAt: sql`now()` }).where(and(eq(mailboxWatch.address, address), eq(mailboxWatch.holder, holder)));
}

export type MailboxCopyRow = typeof mailboxCopies.$inferSelect;

export async function copyRow(db: Tx, messageRowId: string): Promise<MailboxCopyRow | null> {
  const [row] = await db.select().from(mailboxCopies).where(eq(mailboxCopies.messageId, messageRowId));
  return row ?? null;
}

/** Filed: the bytes are no longer needed (the rep's mailbox has them). */
export async function copyFiled(db: Tx, messageRowId: string, folder: string, at: Date): Promise<void> {
  await db.update(mailboxCopies).set({ appendedAt: at, folder, raw: null, lastError: null, attempts: sql`${mailboxCopies.attempts} + 1` }).where(eq(mailboxCopies.messageId, messageRowId));
}

export async function copyFailed(db: Tx, messageRowId: string, error: string): Promise<void> {
  await db.update(mailboxCopies).set({ lastError: error, attempts: sql`${mailboxCopies.attempts} + 1` }).where(eq(mailboxCopies.messageId, messageRowId));
}

/** Copies not yet filed, older than `before` (a job for a newer one is most likely still on its way). */
export async function unfiledCopies(db: Tx, before: Date, limit = 1000): Promise<string[]> {
  const rows = await db
    .select({ id: mailboxCopies.messageId })
    .from(mailboxCopies)
    .where(and(isNull(mailboxCopies.appendedAt), lt(mailboxCopies.createdAt, before), lt(mailboxCopies.attempts, 200)))
    .orderBy(asc(mailboxCopies.createdAt))
    .limit(limit);
  return rows.map((r) => r.id);
}
