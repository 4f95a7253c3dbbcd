// Pixel hits and clicks in bursts (a newsletter's first minutes, a scanner checking every link):
// hits arriving within a few milliseconds share one message lookup, one earlier-clicks lookup and one
// multi-row insert, instead of three round trips each. Each caller still gets its own answer.
import { and, eq, inArray } from 'drizzle-orm';
import type { Context } from '../context.js';
import { messages, signals } from '../db/schema.js';
import { classifyClick } from '../engagement/clicks.js';
import { classifyOpen } from '../engagement/opens.js';
import { verifyToken } from '../mail/tracking.js';
import { recordSignals, type SignalInput } from './recordSignals.js';

export interface Hit {
  token: string;
  userAgent: string | null;
  ip: string | null;
  method: string;
}

type Pending =
  | { kind: 'open'; hit: Hit; at: Date; resolve: (ok: boolean) => void; reject: (e: unknown) => void }
  | { kind: 'click'; hit: Hit & { linkId: string }; at: Date; resolve: (url: string | null) => void; reject: (e: unknown) => void };

export interface BatchOptions {
  /** Flush when this many hits are waiting… */
  maxBatch: number;
  /** …or when the oldest has waited this long. */
  maxWaitMs: number;
}

export class TrackingBatcher {
  private pending: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: Context, private readonly opts: BatchOptions = { maxBatch: 500, maxWaitMs: 10 }) {}

  open(hit: Hit): Promise<boolean> {
    return new Promise((resolve, reject) => this.push({ kind: 'open', hit, at: this.ctx.now(), resolve, reject }));
  }

  click(hit: Hit & { linkId: string }): Promise<string | null> {
    return new Promise((resolve, reject) => this.push({ kind: 'click', hit, at: this.ctx.now(), resolve, reject }));
  }

  /** Flushes what is waiting; for shutdown. */
  async drain(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
  }

  private push(p: Pending): void {
    this.pending.push(p);
    if (this.pending.length >= this.opts.maxBatch) void this.flush();
    else if (!this.timer) this.timer = setTimeout(() => void this.flush(), this.opts.maxWaitMs);
  }

  private flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return this.flushing;
    // Batches are written one after another, so a click's earlier clicks include the previous batch.
    this.flushing = this.flushing.then(() => this.write(batch));
    return this.flushing;
  }

  private async write(batch: Pending[]): Promise<void> {
    try {
      const answers = await trackHits(this.ctx, batch);
      batch.forEach((p, i) => (p.kind === 'open' ? p.resolve(answers[i] !== null) : p.resolve(answers[i] ?? null)));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}

export type TrackedHit = { kind: 'open'; hit: Hit; at: Date } | { kind: 'click'; hit: Hit & { linkId: string }; at: Date };

/**
 * Verifies, classifies and records a set of hits with one message lookup, one earlier-clicks lookup and
 * one multi-row insert. Answers per hit: the link's URL for a click (null when unknown), and for an
 * open '' when the token named a message, null when not.
 */
export async function trackHits(ctx: Context, batch: TrackedHit[]): Promise<(string | null)[]> {
  const secret = ctx.settings.trackingSecret;
  const ids = batch.map((p) => verifyToken(secret, 'track', p.hit.token));
  const known = [...new Set(ids.filter((x): x is string => !!x))];
  const rows = known.length ? await ctx.db.select({ id: messages.id, sentAt: messages.sentAt, links: messages.links }).from(messages).where(inArray(messages.id, known)) : [];
  const byId = new Map(rows.map((r) => [r.id, r]));
  const clicked = [...new Set(batch.flatMap((p, i) => (p.kind === 'click' && ids[i] && byId.has(ids[i]!) ? [ids[i]!] : [])))];
  const earlier = clicked.length
    ? await ctx.db.select({ messageId: signals.messageId, linkId: signals.linkId, at: signals.occurredAt }).from(signals).where(and(inArray(signals.messageId, clicked), eq(signals.kind, 'click')))
    : [];
  const clicksOf = new Map<string, { linkId: string; at: Date }[]>();
  for (const e of earlier) clicksOf.set(e.messageId!, [...(clicksOf.get(e.messageId!) ?? []), { linkId: e.linkId ?? '', at: e.at }]);

  const inputs: SignalInput[] = [];
  const answers = batch.map((p, i): string | null => {
    const msg = ids[i] ? byId.get(ids[i]!) : undefined;
    const second = Math.floor(p.at.getTime() / 1000);
    const evidence = { userAgent: p.hit.userAgent, ip: p.hit.ip, method: p.hit.method };
    if (p.kind === 'open') {
      if (!msg) return null;
      const c = classifyOpen({ userAgent: p.hit.userAgent, ip: p.hit.ip, method: p.hit.method, at: p.at, sentAt: msg.sentAt });
      inputs.push({ sourceId: `open-${msg.id}-${p.hit.ip ?? '-'}-${second}`, kind: 'open', messageRowId: msg.id, human: c.human, reason: c.reason, at: p.at, evidence });
      return '';
    }
    const link = msg?.links.find((l) => l.id === p.hit.linkId);
    if (!msg || !link) return null;
    const others = clicksOf.get(msg.id) ?? [];
    const c = classifyClick({ userAgent: p.hit.userAgent, ip: p.hit.ip, method: p.hit.method, at: p.at, sentAt: msg.sentAt, linkId: link.id, honeypot: link.tag === 'honeypot', otherClicks: [...others], linkCount: msg.links.length });
    // Later clicks in this same batch see this one, as they would have one by one.
    clicksOf.set(msg.id, [...others, { linkId: link.id, at: p.at }]);
    inputs.push({ sourceId: `click-${msg.id}-${link.id}-${p.hit.method}-${p.hit.ip ?? '-'}-${second}`, kind: 'click', messageRowId: msg.id, human: c.human, reason: c.reason, linkId: link.id, tag: link.tag, at: p.at, evidence: { ...evidence, url: link.url } });
    return link.url;
  });
  await recordSignals(ctx, inputs);
  return answers;
}
