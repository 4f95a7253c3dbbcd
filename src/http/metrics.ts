// GET /metrics in the Prometheus text format: the stores' counts at scrape time, and this process's own
// histograms (render and SMTP latency) where it sends mail.
import { Counter, Gauge, Registry } from 'prom-client';
import type { Context } from '../context.js';
import type { ProcessMetrics } from '../metrics.js';
import { metricsSnapshot } from '../usecases/metricsSnapshot.js';

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

export async function metricsText(ctx: Pick<Context, 'db' | 'queues'>, processMetrics: ProcessMetrics | null): Promise<string> {
  const snap = await metricsSnapshot(ctx);
  const r = new Registry();
  const of = (metric: string) => snap.counts.filter((c) => c.metric === metric);

  const messages = new Gauge({ name: 'nurture_messages', help: 'Messages by state (queued, sending, sent, bounced, failed, uncertain, held, cancelled).', labelNames: ['state'], registers: [r] });
  for (const s of ['queued', 'sending', 'sent', 'bounced', 'failed', 'uncertain', 'held', 'cancelled']) messages.set({ state: s }, 0);
  for (const c of of('messages')) messages.set({ state: c.a ?? 'unknown' }, c.n);

  const smtp = new Counter({ name: 'nurture_smtp_replies_total', help: "The relay's answers to our sends by class: 2xx accepted, 4xx temporary, 5xx refused, none (no answer: connection lost or timed out).", labelNames: ['class'], registers: [r] });
  for (const k of ['2xx', '4xx', '5xx', 'none']) smtp.inc({ class: k }, 0);
  for (const c of of('smtp')) smtp.inc({ class: c.a ?? 'none' }, c.n);

  const deferrals = new Counter({ name: 'nurture_deferrals_total', help: 'Steps and sends put off by reason (window, cap_lead, cap_account, out_of_office, rate_limit).', labelNames: ['reason'], registers: [r] });
  for (const c of of('deferrals')) deferrals.inc({ reason: c.a ?? 'other' }, c.n);

  const signals = new Counter({ name: 'nurture_signals_total', help: 'Engagement signals by kind (open, click, reply, …) and verdict (human or machine).', labelNames: ['kind', 'verdict'], registers: [r] });
  for (const c of of('signals')) signals.inc({ kind: c.a ?? 'unknown', verdict: c.b ?? 'unknown' }, c.n);
  const provisional = new Gauge({ name: 'nurture_signals_provisional', help: "A person's opens and clicks not yet settled (they count toward scores once settled).", labelNames: ['kind'], registers: [r] });
  for (const c of of('signals_provisional')) provisional.set({ kind: c.a ?? 'unknown' }, c.n);

  const advances = new Counter({ name: 'nurture_advancements_total', help: 'Stage moves by the stage entered, for leads and for accounts.', labelNames: ['stage', 'scope'], registers: [r] });
  for (const c of of('advances')) advances.inc({ stage: c.a ?? 'unknown', scope: c.b ?? 'lead' }, c.n);

  const enrollments = new Gauge({ name: 'nurture_enrollments', help: 'Enrollments by sequence and state (active, completed, exited).', labelNames: ['sequence', 'state'], registers: [r] });
  for (const c of of('enrollments')) enrollments.set({ sequence: c.a ?? 'unknown', state: c.b ?? 'unknown' }, c.n);

  const depth = new Gauge({ name: 'nurture_queue_jobs', help: 'Jobs in each queue by state (waiting, delayed, active, failed, prioritized).', labelNames: ['queue', 'state'], registers: [r] });
  const oldest = new Gauge({ name: 'nurture_queue_oldest_due_seconds', help: 'How long the job due longest ago has waited for a worker (0 when none waits).', labelNames: ['queue'], registers: [r] });
  for (const q of snap.queues.queues) {
    for (const [state, n] of Object.entries(q.counts)) depth.set({ queue: q.name, state }, n);
    oldest.set({ queue: q.name }, q.oldestDue?.waitingSeconds ?? 0);
  }

  const rec = snap.queues.reconcile;
  const lastRun = new Gauge({ name: 'nurture_reconcile_last_run_timestamp_seconds', help: "When reconcile last finished (Unix time); 0 if no run is kept in Redis.", registers: [r] });
  lastRun.set(rec.last ? Date.parse(rec.last.finishedAt) / 1000 : 0);
  const lastOk = new Gauge({ name: 'nurture_reconcile_last_run_success', help: 'Whether the last reconcile run succeeded (1) or failed (0).', registers: [r] });
  lastOk.set(rec.last?.ok === false ? 0 : 1);
  const tookMs = new Gauge({ name: 'nurture_reconcile_last_run_duration_seconds', help: 'How long the last reconcile run took.', registers: [r] });
  tookMs.set(rec.last?.tookMs != null ? rec.last.tookMs / 1000 : 0);
  const kept = new Gauge({ name: 'nurture_reconcile_runs', help: 'Reconcile runs still kept in Redis (completed runs are kept for an hour), by outcome.', labelNames: ['outcome'], registers: [r] });
  kept.set({ outcome: 'ok' }, rec.keptRuns.ok);
  kept.set({ outcome: 'failed' }, rec.keptRuns.failed);
  const result = rec.last?.result as Record<string, unknown> | null | undefined;
  const requeued = new Gauge({ name: 'nurture_reconcile_last_run_items', help: 'What the last reconcile run found and re-enqueued (steps, sends, settles, fanouts, replanned, uncertain).', labelNames: ['item'], registers: [r] });
  if (result && typeof result === 'object') for (const [k, v] of Object.entries(result)) if (typeof v === 'number') requeued.set({ item: k }, v);

  return (processMetrics ? Registry.merge([r, processMetrics.registry]) : r).metrics();
}
