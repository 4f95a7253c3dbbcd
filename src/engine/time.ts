// Wall-clock arithmetic in a lead's time zone, with Intl only (no I/O, no global state).
import { WEEKDAYS, type Window } from '../config/schema.js';

export type Weekday = (typeof WEEKDAYS)[number];

export interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  weekday: Weekday;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      weekday: 'short',
    });
    formatters.set(tz, f);
  }
  return f;
}

export function localTime(at: Date, tz: string): LocalTime {
  const parts: Record<string, string> = {};
  for (const p of formatter(tz).formatToParts(at)) parts[p.type] = p.value;
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    weekday: parts.weekday!.toLowerCase().slice(0, 3) as Weekday,
  };
}

/** The instant at which the clock in `tz` reads the given local date and time. */
export function zonedInstant(year: number, month: number, day: number, hour: number, minute: number, tz: string): Date {
  const wanted = Date.UTC(year, month - 1, day, hour, minute);
  let guess = wanted;
  // Two passes settle the offset, including across a DST change.
  for (let i = 0; i < 2; i++) {
    const l = localTime(new Date(guess), tz);
    const seen = Date.UTC(l.year, l.month - 1, l.day, l.hour, l.minute);
    guess += wanted - seen;
  }
  return new Date(guess);
}

function minutesOf(clock: string): number {
  const [h, m] = clock.split(':').map(Number);
  return h! * 60 + m!;
}

export function isInWindow(at: Date, w: Window, tz: string): boolean {
  const l = localTime(at, tz);
  const m = l.hour * 60 + l.minute;
  return w.days.includes(l.weekday) && m >= minutesOf(w.from) && m < minutesOf(w.to);
}

/**
 * The local calendar date `days` after the date of `l`. Steps over dates, not 24-hour blocks: on a
 * 23- or 25-hour day (a DST change) adding 24 hours can skip a date or land on the same one.
 */
function localDatePlus(l: LocalTime, days: number): { year: number; month: number; day: number; weekday: Weekday } {
  const d = new Date(Date.UTC(l.year, l.month - 1, l.day + days));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), weekday: WEEKDAYS[(d.getUTCDay() + 6) % 7]! };
}

/** `at` itself when inside the window, else the next moment the window opens. */
export function nextWindowOpen(at: Date, w: Window, tz: string): Date {
  if (isInWindow(at, w, tz)) return at;
  const from = minutesOf(w.from);
  const today = localTime(at, tz);
  for (let d = 0; d <= 7; d++) {
    const l = localDatePlus(today, d);
    if (!w.days.includes(l.weekday)) continue;
    const open = zonedInstant(l.year, l.month, l.day, Math.floor(from / 60), from % 60, tz);
    if (open.getTime() > at.getTime()) return open;
  }
  throw new Error('window never opens'); // unreachable: config validation refuses empty windows
}

/** N working days (Mon–Fri in the lead's zone) later, at the same local time of day. */
export function addBusinessDays(at: Date, n: number, tz: string): Date {
  const start = localTime(at, tz);
  let d = 0;
  let left = n;
  while (left > 0) {
    d++;
    const { weekday } = localDatePlus(start, d);
    if (weekday !== 'sat' && weekday !== 'sun') left--;
  }
  const l = localDatePlus(start, d);
  return zonedInstant(l.year, l.month, l.day, start.hour, start.minute, tz);
}

/** "Mon 09:00 America/New_York": a due time as the lead would read it, for the log beside UTC. */
export function describeLocal(at: Date, tz: string): string {
  // A fan-out page describes the same instant in the same few zones a thousand times (Intl is ~5 µs).
  const key = `${at.getTime()} ${tz}`;
  let text = described.get(key);
  if (text === undefined) {
    const t = localTime(at, tz);
    const day = t.weekday.charAt(0).toUpperCase() + t.weekday.slice(1);
    text = `${day} ${String(t.hour).padStart(2, '0')}:${String(t.minute).padStart(2, '0')} ${tz}`;
    if (described.size >= 256) described.clear();
    described.set(key, text);
  }
  return text;
}
const described = new Map<string, string>();
