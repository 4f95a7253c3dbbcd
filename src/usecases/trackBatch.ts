// Pixel hits and clicks in bursts (a newsletter's first minutes, a scanner checking every link):
// hits arriving within a few milliseconds share one message lookup, one earlier-hits lookup and one
// multi-row insert, instead of three round trips each. Each caller still gets its own answer.
import { and, eq, gte, inArray, sql } from 'drizzle-orm';
import { parseDuration } from '../config/duration.js';
import type { Context } from '../context.js';
import { messages, signals } from '../db/schema.js';
import type { Classification, ClassifyOptions, HitRequest, OtherHit } from '../engagement/classification.js';
import type { Db, Tx } from '../db/client.js';
import { classifyClick } from '../engagement/clicks.js';
import { classifyOpen } from '../engagement/opens.js';
import { verifyToken } from '../mail/tracking.js';
import { recordSignals, type SignalInput } from './recordSignals.js';

export interface Hit {
  token: string;
  userAgent: string | null;
  ip: string | null;
  method: string;
  /** The request headers that tell who is fetching (see TRACKING_HEADERS), names lower-cased. */
  headers: Record<string, string>;
}

/** Request headers that speak to who is fetching: prefetch announcements, fetch metadata, proxies. */
export const TRACKING_HEADERS = ['purpose', 'sec-purpose', 'x-purpose', 'x-moz', 'sec-fetch-mode', 'sec-fetch-dest', 'sec-fetch-site', 'sec-fetch-user', 'accept', 'accept-language', 'via', 'from', 'referer'] as const;

/** Other hits on a message this long before the earliest of a batch are looked at: bursts and re-checks take seconds. */
const LOOK_BACK_MS = 3_600_000;

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
 * Verifies, classifies and records a set of hits with one message lookup, one earlier-hits lookup and
 * one multi-row insert. Answers per hit: the link's URL for a click (null when unknown), and for an
 * open '' when the token named a message, null when not.
 */
export async function trackHits(ctx: Context, batch: TrackedHit[]): Promise<(string | null)[]> {
  const secret = ctx.settings.trackingSecret;
  const ids = batch.map((p) => verifyToken(secret, 'track', p.hit.token));
  const known = [...new Set(ids.filter((x): x is string => !!x))];
  const rows = known.length ? await ctx.db.select({ id: messages.id, sentAt: messages.sentAt, links: messages.links }).from(messages).where(inArray(messages.id, known)) : [];
  const byId = new Map(rows.map((r) => [r.id, r]));
  const found = [...byId.keys()];
  const since = new Date(Math.min(...batch.map((p) => p.at.getTime())) - LOOK_BACK_MS);
  const hitsOf = await clicksOnMessages(ctx.db, [...byId.keys()], since);
  const remember = (messageId: string, h: OtherHit) => hitsOf.set(messageId, [...(hitsOf.get(messageId) ?? []), h]);
  const opts = classifyOptions(ctx);

  const inputs: SignalInput[] = [];
  const answers = batch.map((p, i): string | null => {
    const msg = ids[i] ? byId.get(ids[i]!) : undefined;
    const second = Math.floor(p.at.getTime() / 1000);
    const { token: _t, ...request } = p.hit;
    const seen = { userAgent: p.hit.userAgent, ip: p.hit.ip, method: p.hit.method, ...(Object.keys(p.hit.headers).length ? { headers: p.hit.headers } : {}) };
    if (p.kind === 'open') {
      if (!msg) return null;
      const c = judgeHit({ kind: 'open', request, at: p.at, linkId: null }, msg, hitsOf.get(msg.id) ?? [], opts);
      // Later hits in this same batch see this one, as they would have one by one.
      remember(msg.id, { kind: 'open', linkId: null, at: p.at, ip: p.hit.ip, userAgent: p.hit.userAgent, human: c.human, reason: c.reason });
      inputs.push({ sourceId: `open-${msg.id}-${p.hit.ip ?? '-'}-${second}`, kind: 'open', messageRowId: msg.id, human: c.human, reason: c.reason, at: p.at, evidence: { ...seen, ...(c.evidence ? { verdict: c.evidence } : {}) } });
      return '';
    }
    const link = msg?.links.find((l) => l.id === p.hit.linkId);
    if (!msg || !link) return null;
    const c = judgeHit({ kind: 'click', request, at: p.at, linkId: link.id }, msg, hitsOf.get(msg.id) ?? [], opts);
    remember(msg.id, { kind: 'click', linkId: link.id, at: p.at, ip: p.hit.ip, userAgent: p.hit.userAgent, human: c.human, reason: c.reason });
    inputs.push({ sourceId: `click-${msg.id}-${link.id}-${p.hit.method}-${p.hit.ip ?? '-'}-${second}`, kind: 'click', messageRowId: msg.id, human: c.human, reason: c.reason, linkId: link.id, tag: link.tag, at: p.at, evidence: { ...seen, url: link.url, ...(c.evidence ? { verdict: c.evidence } : {}) } });
    return link.url;
  });
  await recordSignals(ctx, inputs);
  return answers;
}

type MessageForHits = { sentAt: Date | null; links: { id: string; tag: string | null }[] };

/** One open or click judged against its message and the message's other hits: on arrival, and again when it settles. */
export function judgeHit(hit: { kind: 'open' | 'click'; request: HitRequest; at: Date; linkId: string | null }, msg: MessageForHits, otherHits: OtherHit[], opts: ClassifyOptions): Classification {
  const base = { ...hit.request, at: hit.at, sentAt: msg.sentAt, otherHits, linkCount: msg.links.length };
  if (hit.kind === 'open') return classifyOpen(base, opts);
  const link = msg.links.find((l) => l.id === hit.linkId);
  return classifyClick({ ...base, linkId: hit.linkId ?? '', honeypot: link?.tag === 'honeypot' }, opts);
}

/**
 * The clicks recorded on these messages since `since`, with their verdicts, by message: what a hit is
 * judged against (a walk over the links, a re-check, a gateway's render). Other opens bear on no verdict,
 * and a newsletter's first minutes bring thousands of them.
 */
export async function clicksOnMessages(db: Db | Tx, messageIds: string[], since: Date): Promise<Map<string, (OtherHit & { signalId?: number })[]>> {
  const rows = messageIds.length
    ? await db
        .select({
          signalId: signals.id,
          messageId: signals.messageId,
          kind: signals.kind,
          linkId: signals.linkId,
          at: signals.occurredAt,
          human: signals.human,
          reason: signals.reason,
          ip: sql<string | null>`${signals.evidence}->>'ip'`,
          userAgent: sql<string | null>`${signals.evidence}->>'userAgent'`,
        })
        .from(signals)
        .where(and(inArray(signals.messageId, messageIds), eq(signals.kind, 'click'), gte(signals.occurredAt, since)))
    : [];
  const out = new Map<string, (OtherHit & { signalId?: number })[]>();
  for (const { messageId, kind, ...r } of rows) out.set(messageId!, [...(out.get(messageId!) ?? []), { ...r, kind: kind as OtherHit['kind'] }]);
  return out;
}

export function classifyOptions(ctx: Context): ClassifyOptions {
  const { openFloor, clickFloor } = ctx.config.funnel.tracking;
  return { openFloorSeconds: parseDuration(openFloor) / 1000, clickFloorSeconds: parseDuration(clickFloor) / 1000 };
}
