// Pixel hits and clicks in bursts (a newsletter's first minutes, a scanner checking every link):
// hits arriving together share two statements, whatever their number: one query for their messages,
// leads, accounts and earlier clicks, and one that stores the signals with their log lines. Each caller
// still gets its own answer, once its hit is committed.
import { sql } from 'drizzle-orm';
import { parseDuration } from '../config/duration.js';
import type { Context } from '../context.js';
import { anyUuid } from '../db/params.js';
import { signals } from '../db/schema.js';
import { loadHitFacts } from '../db/signals.js';
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
  /** At most this many hits in one batch… */
  maxBatch: number;
  /** …and a hit waits at most this long for others to join it when a batch could be written at once. */
  maxWaitMs: number;
  /**
   * Batches of opens being written at once (see TrackingBatcher). One by default: where Postgres shares
   * the machine and is CPU-bound, larger batches cost it less per hit than overlapping smaller ones;
   * where it is a network hop away, two hide the round trips.
   */
  maxWrites?: number;
}

/**
 * Gathers hits into batches and answers each caller once its batch is committed: a pixel or redirect is
 * never answered for a hit that is not yet a row in Postgres, so nothing acknowledged is lost in a crash.
 * Hits arriving while the writers are busy form the next batch, which goes as soon as one is free (group
 * commit): the busier it gets, the larger the batches. A hit is judged against the clicks recorded on its
 * message before it, so a batch with clicks in it is written alone: the next one waits for its commit and
 * sees them. Batches of opens only change no later verdict, and their writes may overlap (maxWrites).
 */
export class TrackingBatcher {
  private pending: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly writing = new Set<Promise<void>>();
  private clicksInFlight = false;

  constructor(private readonly ctx: Context, private readonly opts: BatchOptions = DEFAULT_BATCH) {}

  open(hit: Hit): Promise<boolean> {
    return new Promise((resolve, reject) => this.push({ kind: 'open', hit, at: this.ctx.now(), resolve, reject }));
  }

  click(hit: Hit & { linkId: string }): Promise<string | null> {
    return new Promise((resolve, reject) => this.push({ kind: 'click', hit, at: this.ctx.now(), resolve, reject }));
  }

  /** Writes everything waiting and in progress; for shutdown. */
  async drain(): Promise<void> {
    this.next();
    while (this.writing.size) await Promise.all(this.writing);
  }

  private push(p: Pending): void {
    this.pending.push(p);
    if (this.pending.length >= this.opts.maxBatch) this.next();
    else if (!this.timer && this.canWrite()) this.timer = setTimeout(() => this.next(), this.opts.maxWaitMs);
  }

  private canWrite(): boolean {
    return this.writing.size === 0 || (!this.clicksInFlight && this.writing.size < (this.opts.maxWrites ?? 1));
  }

  private next(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.pending.length && this.canWrite()) {
      const batch = this.pending.length <= this.opts.maxBatch ? this.pending : this.pending.slice(0, this.opts.maxBatch);
      this.pending = batch === this.pending ? [] : this.pending.slice(batch.length);
      const clicks = batch.some((p) => p.kind === 'click');
      if (clicks) this.clicksInFlight = true;
      const done: Promise<void> = this.write(batch).finally(() => {
        this.writing.delete(done);
        if (clicks) this.clicksInFlight = false;
        this.next();
      });
      this.writing.add(done);
    }
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

/** Batches of up to 1,000 hits, one written at a time; an idle server waits 2 ms for company. */
export const DEFAULT_BATCH: BatchOptions = { maxBatch: 1000, maxWaitMs: 2, maxWrites: 1 };

export type TrackedHit = { kind: 'open'; hit: Hit; at: Date } | { kind: 'click'; hit: Hit & { linkId: string }; at: Date };

/**
 * Verifies, classifies and records a set of hits: one query loads their messages (with leads, accounts
 * and recent clicks), and one statement stores the signals with their log lines, whatever the batch's
 * size. Answers per hit: the link's URL for a click (null when unknown), and for an open '' when the
 * token named a message, null when not.
 */
export async function trackHits(ctx: Context, batch: TrackedHit[]): Promise<(string | null)[]> {
  const secret = ctx.settings.trackingSecret;
  const ids = batch.map((p) => verifyToken(secret, 'track', p.hit.token));
  const known = [...new Set(ids.filter((x): x is string => !!x))];
  let earliest = Infinity;
  for (const p of batch) earliest = Math.min(earliest, p.at.getTime());
  const byId = await loadHitFacts(ctx.database.sql, known, new Date(earliest - LOOK_BACK_MS));
  // Later hits in this same batch see the earlier ones, as they would have one by one.
  const hitsOf = new Map<string, OtherHit[]>();
  for (const [id, m] of byId) hitsOf.set(id, m.clicks.map((c) => ({ ...c, kind: 'click' as const })));
  const opts = classifyOptions(ctx);

  const inputs: SignalInput[] = [];
  const answers = batch.map((p, i): string | null => {
    const msg = ids[i] ? byId.get(ids[i]!) : undefined;
    if (!msg) return null;
    const { hit, at } = p;
    const second = Math.floor(at.getTime() / 1000);
    const request: HitRequest = { userAgent: hit.userAgent, ip: hit.ip, method: hit.method, headers: hit.headers };
    const seen = { userAgent: hit.userAgent, ip: hit.ip, method: hit.method, ...(hasAny(hit.headers) ? { headers: hit.headers } : {}) };
    const others = hitsOf.get(msg.id)!;
    if (p.kind === 'open') {
      const c = judgeHit({ kind: 'open', request, at, linkId: null }, msg, others, opts);
      others.push({ kind: 'open', linkId: null, at, ip: hit.ip, userAgent: hit.userAgent, human: c.human, reason: c.reason });
      inputs.push({ sourceId: `open-${msg.id}-${hit.ip ?? '-'}-${second}`, kind: 'open', messageRowId: msg.id, human: c.human, reason: c.reason, at, evidence: c.evidence ? { ...seen, verdict: c.evidence } : seen });
      return '';
    }
    const link = msg.links.find((l) => l.id === p.hit.linkId);
    if (!link) return null;
    const c = judgeHit({ kind: 'click', request, at, linkId: link.id }, msg, others, opts);
    others.push({ kind: 'click', linkId: link.id, at, ip: hit.ip, userAgent: hit.userAgent, human: c.human, reason: c.reason });
    inputs.push({ sourceId: `click-${msg.id}-${link.id}-${hit.method}-${hit.ip ?? '-'}-${second}`, kind: 'click', messageRowId: msg.id, human: c.human, reason: c.reason, linkId: link.id, tag: link.tag, at, evidence: { ...seen, url: link.url, ...(c.evidence ? { verdict: c.evidence } : {}) } });
    return link.url;
  });
  await recordSignals(ctx, inputs, byId);
  return answers;
}

function hasAny(o: Record<string, string>): boolean {
  for (const _ in o) return true;
  return false;
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
 * and a newsletter's first minutes bring thousands of them. The ids travel as one array parameter, the
 * rows are read raw (only the id and the instant need decoding), and each message's list is pushed to.
 */
export async function clicksOnMessages(db: Db | Tx, messageIds: string[], since: Date): Promise<Map<string, (OtherHit & { signalId?: number })[]>> {
  const out = new Map<string, (OtherHit & { signalId?: number })[]>();
  if (!messageIds.length) return out;
  const rows = await db.execute<{ signalId: string | number; messageId: string; kind: string; linkId: string | null; at: string | Date; human: boolean; reason: string; ip: string | null; userAgent: string | null }>(sql`
    select id as "signalId", message_id as "messageId", kind, link_id as "linkId", occurred_at as at, human, reason,
      evidence->>'ip' as ip, evidence->>'userAgent' as "userAgent"
    from signals
    where ${anyUuid(signals.messageId, messageIds)} and kind = 'click' and occurred_at >= ${since.toISOString()}::timestamptz`);
  for (const r of rows) {
    // bigserial in number mode, as drizzle's select gave it (int8 crosses as text).
    const hit = { signalId: Number(r.signalId), linkId: r.linkId, at: new Date(r.at), human: r.human, reason: r.reason, ip: r.ip, userAgent: r.userAgent, kind: r.kind as OtherHit['kind'] };
    const list = out.get(r.messageId);
    if (list) list.push(hit);
    else out.set(r.messageId, [hit]);
  }
  return out;
}

export function classifyOptions(ctx: Context): ClassifyOptions {
  const { openFloor, clickFloor } = ctx.config.funnel.tracking;
  return { openFloorSeconds: parseDuration(openFloor) / 1000, clickFloorSeconds: parseDuration(clickFloor) / 1000 };
}
