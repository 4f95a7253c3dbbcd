// Every read and write of the fanouts table: a fan-out's row, its checkpoint, and the list the CLI shows.
import { and, asc, count, desc, eq, gt, inArray, sql } from 'drizzle-orm';
import type { Tx } from './client.js';
import { fanouts, leads } from './schema.js';

export type Fanout = typeof fanouts.$inferSelect;
export type FanoutAudience = Fanout['audience'];

/** Leads a fan-out over `audience` would scan now (active, in the stage, of the personas). */
export function audienceWhere(audience: FanoutAudience, afterLeadId: string | null = null) {
  return and(
    eq(leads.stage, audience.stage),
    eq(leads.status, 'active'),
    audience.personas ? inArray(leads.persona, audience.personas) : undefined,
    afterLeadId ? gt(leads.id, afterLeadId) : undefined,
  );
}

export async function countAudience(tx: Tx, audience: FanoutAudience): Promise<number> {
  const [r] = await tx.select({ n: count() }).from(leads).where(audienceWhere(audience));
  return r?.n ?? 0;
}

export async function insertFanout(tx: Tx, row: Pick<Fanout, 'sequenceId' | 'sequenceVersion' | 'audience' | 'total' | 'source'> & { startedAt: Date }): Promise<Fanout> {
  const [f] = await tx.insert(fanouts).values({ ...row, updatedAt: row.startedAt }).returning();
  return f!;
}

/** The fan-out's row as it is now, unlocked. */
export async function readFanout(tx: Tx, id: string): Promise<Fanout | null> {
  const [f] = await tx.select().from(fanouts).where(eq(fanouts.id, id));
  return f ?? null;
}

/** The fan-out's row, locked until the transaction ends: one page at a time, whoever runs it. */
export async function lockFanout(tx: Tx, id: string): Promise<Fanout | null> {
  const [f] = await tx.select().from(fanouts).where(eq(fanouts.id, id)).for('update');
  return f ?? null;
}

/** Records a page: the checkpoint moves to its last key, and the fan-out ends when it was the last page. */
export async function recordPage(tx: Tx, id: string, page: { lastLeadId: string | null; scanned: number; enrolled: number; last: boolean; at: Date }): Promise<void> {
  await tx
    .update(fanouts)
    .set({
      ...(page.lastLeadId ? { afterLeadId: page.lastLeadId } : {}),
      scanned: sql`${fanouts.scanned} + ${page.scanned}`,
      enrolled: sql`${fanouts.enrolled} + ${page.enrolled}`,
      pages: sql`${fanouts.pages} + ${page.scanned > 0 ? 1 : 0}`,
      updatedAt: page.at,
      ...(page.last ? { status: 'done', finishedAt: page.at } : {}),
    })
    .where(eq(fanouts.id, id));
}

export async function failFanout(tx: Tx, id: string, error: string, at: Date): Promise<void> {
  await tx.update(fanouts).set({ status: 'failed', error, updatedAt: at, finishedAt: at }).where(and(eq(fanouts.id, id), eq(fanouts.status, 'running')));
}

/** Every fan-out not yet done, oldest first: what reconcile resumes. */
export async function runningFanouts(tx: Tx): Promise<Pick<Fanout, 'id' | 'afterLeadId'>[]> {
  return tx.select({ id: fanouts.id, afterLeadId: fanouts.afterLeadId }).from(fanouts).where(eq(fanouts.status, 'running')).orderBy(asc(fanouts.startedAt));
}

/** The most recent fan-outs, newest first (all running ones included whatever their age). */
export async function recentFanouts(tx: Tx, limit: number): Promise<Fanout[]> {
  return tx
    .select()
    .from(fanouts)
    .orderBy(sql`${fanouts.status} = 'running' desc`, desc(fanouts.startedAt))
    .limit(limit);
}
