// What /metrics reports from the stores, read once per scrape: counts from Postgres (every process sees
// the same totals) and the queues' depths and reconcile's last run from Redis.
import type { Context } from '../context.js';
import { metricCounts } from '../db/reads.js';
import { queueHealth, type QueueHealth } from './queueHealth.js';

export interface MetricsSnapshot {
  counts: { metric: string; a: string | null; b: string | null; n: number }[];
  queues: QueueHealth;
}

export async function metricsSnapshot(ctx: Pick<Context, 'db' | 'queues'>): Promise<MetricsSnapshot> {
  const [counts, queues] = await Promise.all([metricCounts(ctx.db), queueHealth(ctx, { failed: 0 })]);
  return { counts, queues };
}
