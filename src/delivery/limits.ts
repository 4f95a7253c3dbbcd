// Sending limits and warm-up, decided without I/O: which counters a send from a domain counts against
// right now, and — given how many sends each already holds — whether it may go, or until when it waits.
import type { Sending, SendingLimit, Warmup } from '../config/schema.js';

export type LimitWindow = 'second' | 'minute' | 'day';

const WINDOW_MS: Record<LimitWindow, number> = { second: 1_000, minute: 60_000, day: 86_400_000 };

/** One counter a send counts against: a scope (the relay, or a sending domain), a window and its ceiling. */
export interface LimitCounter {
  /** Stable for the window's lifetime: the counter's name in the store. */
  key: string;
  scope: 'relay' | `domain:${string}` | `mailbox:${string}`;
  window: LimitWindow;
  max: number;
  /** When the current window ends (ms since epoch): a deferred send wakes then. */
  endsAt: number;
  /** For the log: "relay 5/s", "handrail.example warm-up day 3: 112/day". */
  label: string;
}

export type LimitVerdict = { allowed: true } | { allowed: false; until: Date; why: string };

/** The domain part of an address, lower-cased. */
export function domainOf(email: string): string {
  return email.slice(email.lastIndexOf('@') + 1).toLowerCase();
}

/** A domain's own rule, or the closest parent's (`mail.handrail.example` is governed by `handrail.example`). */
function coveredBy(fromDomain: string, ruleDomain: string): boolean {
  const d = ruleDomain.toLowerCase();
  return fromDomain === d || fromDomain.endsWith(`.${d}`);
}

/**
 * The warm-up ceiling for the UTC day `now` falls on: `dailyStart` on the start day (and before it),
 * then growing by a factor or a fixed increase each day, never above `max`.
 */
export function warmupDailyLimit(w: Warmup, now: Date): number {
  const start = Date.parse(`${w.start}T00:00:00Z`);
  const day = Math.max(0, Math.floor((now.getTime() - start) / WINDOW_MS.day));
  const raw = w.dailyIncrease !== undefined ? w.dailyStart + w.dailyIncrease * day : w.dailyStart * (w.dailyGrowth ?? 1) ** day;
  const limit = Math.floor(Math.min(raw, w.max ?? Infinity));
  return Math.max(1, limit);
}

export function warmupDay(w: Warmup, now: Date): number {
  return Math.max(0, Math.floor((now.getTime() - Date.parse(`${w.start}T00:00:00Z`)) / WINDOW_MS.day)) + 1;
}

function windowIndex(window: LimitWindow, now: Date): number {
  return Math.floor(now.getTime() / WINDOW_MS[window]);
}

const SHORT: Record<LimitWindow, string> = { second: 's', minute: 'min', day: 'day' };

/** The counter of `scope` for the `window` that `now` falls in. */
export function limitCounter(scope: LimitCounter['scope'], window: LimitWindow, max: number, label: string, now: Date): LimitCounter {
  const index = windowIndex(window, now);
  return { key: `${scope}:${window}:${index}`, scope, window, max, endsAt: (index + 1) * WINDOW_MS[window], label };
}

/** "5/s", "20/min", "500/day": a ceiling as the log says it. */
export function perWindowLabel(max: number, window: LimitWindow): string {
  return `${max}/${SHORT[window]}`;
}

/** Every counter a send from `fromDomain` counts against at `now`. Empty when nothing limits it. */
export function limitCounters(sending: Pick<Sending, 'limits' | 'warmup'> | undefined, fromDomain: string, now: Date): LimitCounter[] {
  if (!sending) return [];
  const out: LimitCounter[] = [];
  const counter = (scope: LimitCounter['scope'], window: LimitWindow, max: number, label: string) => limitCounter(scope, window, max, label, now);
  const domain = fromDomain.toLowerCase();
  for (const l of sending.limits) {
    if (l.domain && !coveredBy(domain, l.domain)) continue;
    const scope: LimitCounter['scope'] = l.domain ? `domain:${l.domain.toLowerCase()}` : 'relay';
    const who = l.domain ? l.domain.toLowerCase() : 'relay';
    for (const [window, max] of perWindow(l)) out.push(counter(scope, window, max, `${who} ${perWindowLabel(max, window)}`));
  }
  const warmups = sending.warmup === undefined ? [] : Array.isArray(sending.warmup) ? sending.warmup : [sending.warmup];
  for (const w of warmups) {
    if (!coveredBy(domain, w.domain)) continue;
    const max = warmupDailyLimit(w, now);
    // Its own counter name: a warm-up and a perDay limit on the same domain count the same sends, but
    // keeping them apart keeps each one's count honest when either is edited.
    const c = counter(`domain:${w.domain.toLowerCase()}`, 'day', max, `${w.domain.toLowerCase()} warm-up day ${warmupDay(w, now)}: ${max}/day`);
    out.push({ ...c, key: `${c.key}:warmup` });
  }
  return out;
}

function perWindow(l: SendingLimit): [LimitWindow, number][] {
  const out: [LimitWindow, number][] = [];
  if (l.perSecond !== undefined) out.push(['second', l.perSecond]);
  if (l.perMinute !== undefined) out.push(['minute', l.perMinute]);
  if (l.perDay !== undefined) out.push(['day', l.perDay]);
  return out;
}

/**
 * May this send go? `counted[i]` is how many sends counter i already holds in its window, not counting
 * this one. When any counter is full the send waits until the latest of the full windows ends (an
 * earlier wake-up would only meet the same full counter again).
 */
export function decideLimits(counters: LimitCounter[], counted: readonly number[], now: Date): LimitVerdict {
  const full = counters.filter((c, i) => (counted[i] ?? 0) >= c.max);
  if (!full.length) return { allowed: true };
  const last = full.reduce((a, b) => (b.endsAt > a.endsAt ? b : a));
  const until = new Date(Math.max(last.endsAt, now.getTime() + 1));
  return { allowed: false, until, why: `rate limit ${full.map((c) => c.label).join(', ')}` };
}
