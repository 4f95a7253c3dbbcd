// The delivery and engagement log, read one way by everyone: `nurture logs`, the console's live log and
// GET /v1/activity (and its stream). A page is read by key (after or before an activity id); following
// keeps its place with a cursor that tolerates ids committing out of order, and rides out a database
// restart. Whether a signal was a person or a machine, and why, is read off the event here.
import type { Tx } from '../db/client.js';
import {
  accountIdsNamed,
  latestActivityIds,
  selectActivity,
  selectActivitySince,
  type ActivityFilter,
  type ActivityRow,
  type ActivityWithZone,
} from '../db/activity.js';
import { UseCaseError } from './errors.js';
import { isEmail } from './inputs.js';

export type { ActivityFilter } from '../db/activity.js';

/** One event as the console and the API show it. */
export interface ActivityEvent {
  id: number;
  at: string;
  kind: string;
  detail: string;
  lead: string | null;
  account: string | null;
  sequence: string | null;
  step: string | null;
  /** For signals: human or machine, the rule that said so, and whether the verdict may still change. */
  verdict: { human: boolean; reason: string; provisional: boolean } | null;
  /** The lead's zone (else its account's), to show the time as the lead read it. */
  zone: string | null;
  data: Record<string, unknown>;
}

/** `defaultZone`: the funnel's, for a lead (or account) without a zone of its own. */
export function toEvent(r: ActivityWithZone, defaultZone: string | null = null): ActivityEvent {
  const d = r.data ?? {};
  const verdict = typeof d.human === 'boolean' && typeof d.reason === 'string' ? { human: d.human, reason: d.reason, provisional: d.provisional === true } : null;
  return { id: r.id, at: r.at.toISOString(), kind: r.kind, detail: r.detail, lead: r.email, account: r.accountName, sequence: r.sequenceId, step: r.stepId, verdict, zone: r.zone ?? (r.email || r.accountId ? defaultZone : null), data: d };
}

export interface ActivityPage {
  events: ActivityEvent[];
  /** Pass as `after` to read on (and as the stream's Last-Event-ID): the newest id in this page, or the `after` given. */
  next: number | null;
  /** Pass as `before` for older events; null when this page reached the start. */
  older: number | null;
}

export const ACTIVITY_PAGE_MAX = 1000;

function messageOf(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  const e = cause instanceof Error ? cause : error;
  return e instanceof Error ? e.message || (e as { code?: string }).code || e.name : String(e);
}

/**
 * `after`: events after that id, oldest first (reading on, or catching up). Otherwise the newest events
 * (before `before`, if given), returned oldest first too, so a page always reads top to bottom in time.
 */
export async function readActivity(db: Tx, filter: ActivityFilter, page: { after?: number; before?: number; limit?: number } = {}, defaultZone: string | null = null): Promise<ActivityPage> {
  // The API caps `limit` where it parses it (activityQuery); the CLI may ask for more.
  const limit = page.limit ?? 100;
  const rows = await selectActivity(db, filter, { ...page, limit });
  if (page.after === undefined) rows.reverse();
  const events = rows.map((r) => toEvent(r, defaultZone));
  const newest = events.at(-1)?.id ?? null;
  return {
    events,
    next: newest ?? page.after ?? (page.before !== undefined ? page.before - 1 : await latestActivityIds(db, 1).then((ids) => ids[0] ?? 0)),
    older: page.after === undefined && rows.length === limit ? events[0]!.id : null,
  };
}

/** The newest `limit` rows up to an id, oldest first, as stored: what `nurture logs` prints before it follows. */
export async function activityRowsUpTo(db: Tx, filter: ActivityFilter, upTo: number, limit: number): Promise<ActivityRow[]> {
  const rows = await selectActivity(db, filter, { upTo, limit });
  return rows.reverse().map(withoutZone);
}

export const withoutZone = ({ zone: _zone, ...row }: ActivityWithZone): ActivityRow => row;

/** Whether a followed event passes the filter (the account resolved to its ids beforehand). */
export function matchesFilter(r: ActivityWithZone, f: ActivityFilter, accountIds: readonly string[] | null): boolean {
  if (f.lead && r.email !== f.lead) return false;
  if (f.account && !(r.accountId && accountIds?.includes(r.accountId))) return false;
  if (f.sequence && r.sequenceId !== f.sequence) return false;
  if (f.step && r.stepId !== f.step) return false;
  if (f.kinds?.length && !f.kinds.includes(r.kind)) return false;
  return true;
}

export const resolveAccount = (db: Tx, f: ActivityFilter) => (f.account ? accountIdsNamed(db, f.account) : Promise.resolve(null));

const ID = /^\d{1,15}$/;
const NAME = /^[\w-]{1,200}$/;

/** The filters and page of GET /v1/activity (and the console's log) from a query string; a bad one is a 400 naming it. */
export function activityQuery(q: URLSearchParams): { filter: ActivityFilter; page: { after?: number; before?: number; limit?: number } } {
  const filter: ActivityFilter = {};
  const page: { after?: number; before?: number; limit?: number } = {};
  const get = (k: string) => {
    const v = q.get(k);
    return v === null || v.trim() === '' ? null : v.trim();
  };
  const bad = (field: string, why: string) => new UseCaseError('invalid_field', why, field);
  for (const k of ['after', 'before'] as const) {
    const v = get(k);
    if (v === null) continue;
    if (!ID.test(v)) throw bad(k, `${k} must be an activity id (a whole number), not "${v.slice(0, 40)}"`);
    page[k] = Number(v);
  }
  const limit = get('limit');
  if (limit !== null) {
    if (!/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > ACTIVITY_PAGE_MAX) throw bad('limit', `limit must be a number from 1 to ${ACTIVITY_PAGE_MAX}`);
    page.limit = Number(limit);
  }
  const lead = get('lead');
  if (lead !== null) {
    if (!isEmail(lead.toLowerCase())) throw bad('lead', `lead "${lead.slice(0, 100)}" is not an email address`);
    filter.lead = lead.toLowerCase();
  }
  const account = get('account');
  if (account !== null) {
    if (!/^[\w.@-]{1,253}$/.test(account)) throw bad('account', 'account must be an account key or domain (letters, digits, ".", "-", "_")');
    filter.account = account.toLowerCase();
  }
  for (const k of ['sequence', 'step'] as const) {
    const v = get(k);
    if (v === null) continue;
    if (!NAME.test(v)) throw bad(k, `${k} must be an id (letters, digits, "-" and "_")`);
    filter[k] = v;
  }
  const kind = get('kind');
  if (kind !== null) {
    const kinds = kind.split(',').map((k) => k.trim()).filter(Boolean);
    const wrong = kinds.find((k) => !/^[a-z_]{1,40}$/.test(k));
    if (wrong !== undefined || !kinds.length) throw bad('kind', `kind must be one or more event kinds separated by commas (sent,click,…), not "${(wrong ?? kind).slice(0, 40)}"`);
    filter.kinds = kinds;
  }
  return { filter, page };
}

// Following -------------------------------------------------------------------------------------------

/**
 * What following has handled: every activity id up to `high`, except the `gaps`. Ids are taken when a
 * transaction inserts and become visible when it commits, so a later id can show up first; the ids skipped
 * meanwhile stay open for `GAP_GRACE_MS` (a slow transaction still commits into them; a rolled-back one
 * never will) and are delivered if they appear. Nothing is delivered twice, nothing committed in time missed.
 */
export interface Cursor {
  high: number;
  gaps: Array<{ from: number; to: number; since: number }>;
}

export const GAP_GRACE_MS = 60_000;
const PAGE = 1000;

/** The cursor after `ids` (ascending: the late ones inside gaps, then new ones past `high`) were seen at `now`. */
export function advanceCursor(cursor: Cursor, ids: readonly number[], now: number, graceMs = GAP_GRACE_MS): Cursor {
  let gaps = cursor.gaps;
  let high = cursor.high;
  for (const id of ids) {
    if (id <= high) {
      gaps = gaps.flatMap((g) =>
        id < g.from || id > g.to ? [g] : [...(id > g.from ? [{ ...g, to: id - 1 }] : []), ...(id < g.to ? [{ ...g, from: id + 1 }] : [])],
      );
      continue;
    }
    if (id > high + 1) gaps = [...gaps, { from: high + 1, to: id - 1, since: now }];
    high = id;
  }
  return { high, gaps: gaps.filter((g) => now - g.since < graceMs) };
}

/** A connection lost or refused, or a server shutting down or starting up: worth waiting out. */
export function isTransientDatabaseError(error: unknown): boolean {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined; e && typeof e === 'object'; e = e.cause as typeof e) {
    const code = typeof e.code === 'string' ? e.code : undefined;
    if (!code) continue;
    // SQLSTATE: 08 connection exception, 57P01-57P03 shutdown / crash / cannot connect now, 53 resources.
    if (/^[0-9A-Z]{5}$/.test(code)) return /^(08|57P0[123]|53)/.test(code);
    // postgres.js's and Node's own: CONNECTION_CLOSED, CONNECT_TIMEOUT, ECONNREFUSED, ECONNRESET, …
    return true;
  }
  return false;
}

/** Where following starts: the newest id, with the ids below it not yet committed left open. */
export async function startingCursor(db: Tx, now = Date.now()): Promise<Cursor> {
  const latest = await latestActivityIds(db, PAGE);
  return advanceCursor({ high: (latest[0] ?? 1) - 1, gaps: [] }, latest, now);
}

export interface TailOptions {
  /** Wakes the tail at once when an activity transaction commits (LISTEN); polling is the net under it. */
  listen: (onNotify: () => void) => Promise<{ close(): Promise<void> }>;
  pollMs?: number;
  /** Where waiting for the database is reported, each line starting with `label`. */
  warn?: (line: string) => void;
  label?: string;
  /** Where to start (everything after it); by default, where the log stands when the first subscriber comes. */
  from?: Cursor;
  /**
   * An error that is not an outage (a wrong password, a missing table): given this, the tail stops and
   * hands it over; without it, a server keeps trying, more slowly.
   */
  onFatal?: (error: unknown) => void;
}

/**
 * One follower of the log per process, however many watch it: it reads each new event once and hands
 * it to every subscriber (who filter it themselves). It runs while someone is subscribed.
 */
export class ActivityTail {
  private subscribers = new Set<(rows: ActivityWithZone[]) => void>();
  private cursor: Cursor | null = null;
  private running: Promise<void> | null = null;
  private wake: () => void = () => {};
  private ready: Promise<void> | null = null;

  constructor(private readonly db: Tx, private readonly opts: TailOptions) {}

  /** Subscribes; resolves once the tail has its starting place (so nothing after `high()` can be missed). */
  async subscribe(fn: (rows: ActivityWithZone[]) => void): Promise<() => void> {
    this.subscribers.add(fn);
    if (!this.running) {
      let started!: () => void;
      this.ready = new Promise<void>((r) => (started = r));
      this.running = this.run(started).finally(() => {
        this.running = null;
        this.cursor = null;
      });
    }
    await this.ready;
    return () => {
      this.subscribers.delete(fn);
      if (!this.subscribers.size) this.wake();
    };
  }

  /** Every id up to this one has been handed out (or was there before the tail started). */
  high(): number {
    return this.cursor?.high ?? 0;
  }

  async close(): Promise<void> {
    this.subscribers.clear();
    this.wake();
    await this.running;
  }

  private async run(started: () => void): Promise<void> {
    const warn = this.opts.warn ?? ((l: string) => console.warn(l));
    const label = this.opts.label ?? '[activity]';
    let listener: { close(): Promise<void> } | null = null;
    let retryMs = 0;
    const wait = (ms: number) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(done, ms);
        this.wake = done;
        function done() {
          clearTimeout(t);
          resolve();
        }
      });
    try {
      while (this.subscribers.size) {
        try {
          listener ??= await this.opts.listen(() => this.wake());
          if (!this.cursor) {
            this.cursor = this.opts.from ?? (await startingCursor(this.db));
            started();
            continue;
          }
          const rows = await selectActivitySince(this.db, this.cursor.high, this.cursor.gaps, PAGE);
          if (retryMs) warn(`${label}: the database is back; resuming after event #${this.cursor.high}`);
          retryMs = 0;
          this.cursor = advanceCursor(this.cursor, rows.map((r) => r.id), Date.now());
          if (rows.length) for (const fn of this.subscribers) fn(rows);
          if (rows.length === PAGE) continue;
          await wait(this.opts.pollMs ?? 2000);
        } catch (error) {
          // An outage is waited out (the listening connection went with the server: listen again once it
          // is back). Anything else ends a command, and a server reports it and tries again more slowly.
          const transient = isTransientDatabaseError(error);
          if (!transient && this.opts.onFatal) {
            this.opts.onFatal(error);
            return;
          }
          await listener?.close();
          listener = null;
          retryMs = Math.min(Math.max(retryMs * 2, transient ? 250 : 5_000), 10_000);
          warn(`${label}: ${transient ? 'lost the database' : 'could not read the log'} (${messageOf(error)}); retrying in ${(retryMs / 1000).toFixed(retryMs < 1000 ? 2 : 0)} s…`);
          await wait(retryMs);
        }
      }
    } finally {
      started();
      await listener?.close();
    }
  }
}
