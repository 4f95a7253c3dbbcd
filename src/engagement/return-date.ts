/**
 * "I will be back on Monday 12 January" → 2026-01-12. Only dates near a return phrase count, and a date is
 * returned only when it is unambiguous relative to the message's own Date: otherwise null, because a wrong
 * return date delays a follow-up for weeks while a missing one only falls back to the default pause.
 */

const MONTHS: Record<string, number> = {};
const MONTH_NAMES: readonly (readonly string[])[] = [
  ['january', 'jan', 'januar', 'jänner', 'janvier', 'janv', 'enero', 'ene'],
  ['february', 'feb', 'februar', 'février', 'févr', 'fevrier', 'febrero'],
  ['march', 'mar', 'märz', 'märz', 'mars', 'marzo'],
  ['april', 'apr', 'avril', 'avr', 'abril', 'abr'],
  ['may', 'mai', 'mayo'],
  ['june', 'jun', 'juni', 'juin', 'junio'],
  ['july', 'jul', 'juli', 'juillet', 'juil', 'julio'],
  ['august', 'aug', 'août', 'aout', 'agosto', 'ago'],
  ['september', 'sep', 'sept', 'septembre', 'septiembre'],
  ['october', 'oct', 'oktober', 'okt', 'octobre', 'octubre'],
  ['november', 'nov', 'novembre', 'noviembre'],
  ['december', 'dec', 'dezember', 'dez', 'décembre', 'decembre', 'diciembre', 'dic'],
];
MONTH_NAMES.forEach((names, index) => names.forEach((n) => (MONTHS[n] = index)));

const WEEKDAYS: Record<string, number> = {};
const WEEKDAY_NAMES: readonly (readonly string[])[] = [
  ['sunday', 'sonntag', 'dimanche', 'domingo'],
  ['monday', 'montag', 'lundi', 'lunes'],
  ['tuesday', 'dienstag', 'mardi', 'martes'],
  ['wednesday', 'mittwoch', 'mercredi', 'miércoles', 'miercoles'],
  ['thursday', 'donnerstag', 'jeudi', 'jueves'],
  ['friday', 'freitag', 'vendredi', 'viernes'],
  ['saturday', 'samstag', 'samedi', 'sábado', 'sabado'],
];
WEEKDAY_NAMES.forEach((names, index) => names.forEach((n) => (WEEKDAYS[n] = index)));

// \b is ASCII-only in JS regexes, so letter boundaries are spelled out for "août", "märz", "sábado".
const MONTH = `(?<!\\p{L})(${Object.keys(MONTHS).sort((a, b) => b.length - a.length).join('|')})(?!\\p{L})\\.?`;
const WEEKDAY = `(?<!\\p{L})(${Object.keys(WEEKDAYS).join('|')})(?!\\p{L})`;

const DATE_PATTERNS: readonly { re: RegExp; kind: 'iso' | 'numeric' | 'dayMonth' | 'monthDay' | 'weekday' | 'tomorrow' }[] = [
  { kind: 'iso', re: /\b(\d{4})-(\d{2})-(\d{2})\b/iu },
  { kind: 'numeric', re: /\b(\d{1,2})([./])(\d{1,2})(?:\2(\d{4}|\d{2}))?\b/iu },
  { kind: 'dayMonth', re: new RegExp(`\\b(\\d{1,2})(?:st|nd|rd|th|er|\\.)?\\s+(?:of\\s+|de\\s+)?${MONTH}(?:\\s+(?:de\\s+)?(\\d{4}))?`, 'iu') },
  { kind: 'monthDay', re: new RegExp(`${MONTH}\\s+(\\d{1,2})(?:st|nd|rd|th)?\\b(?:,?\\s+(\\d{4}))?`, 'iu') },
  { kind: 'weekday', re: new RegExp(`${WEEKDAY}`, 'iu') },
  { kind: 'tomorrow', re: /\b(tomorrow|morgen|demain|mañana)\b/iu },
];

/** Phrases that introduce a return date, in the languages the subject patterns cover. */
const RETURN_PHRASE =
  /\b(back|return(?:ing|s)?|in the office|until|till)\b|zurück|wieder|\bbis\b|de retour|\bretour\b|jusqu['’]?au|regres\w*|volver\w*|de vuelta|\bhasta\b/giu;
const LOOKAHEAD_CHARS = 90;
const MAX_DAYS_AHEAD_NO_YEAR = 300;
const MAX_DAYS_AHEAD_WITH_YEAR = 400;
const MAX_DAYS_AHEAD_AMBIGUOUS = 120;
const DAY_MS = 86_400_000;

function utcDay(y: number, m: number, d: number): Date | null {
  const date = new Date(Date.UTC(y, m, d));
  return date.getUTCMonth() === m && date.getUTCDate() === d ? date : null;
}

function startOfUtcDay(date: Date): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
}

function inWindow(candidate: Date, ref: Date, maxDays: number): boolean {
  const days = (candidate.getTime() - startOfUtcDay(ref).getTime()) / DAY_MS;
  return days >= -1 && days <= maxDays;
}

/** Yearless day+month: the next occurrence on or after the reference day. */
function nextOccurrence(month: number, day: number, ref: Date): Date | null {
  for (const year of [ref.getUTCFullYear(), ref.getUTCFullYear() + 1]) {
    const candidate = utcDay(year, month, day);
    if (candidate && inWindow(candidate, ref, MAX_DAYS_AHEAD_NO_YEAR)) return candidate;
  }
  return null;
}

function withYear(year: number, month: number, day: number, ref: Date): Date | null {
  const fullYear = year < 100 ? 2000 + year : year;
  const candidate = utcDay(fullYear, month, day);
  return candidate && inWindow(candidate, ref, MAX_DAYS_AHEAD_WITH_YEAR) ? candidate : null;
}

function resolve(kind: string, m: RegExpExecArray, ref: Date): Date | null {
  const num = (i: number) => Number(m[i]);
  switch (kind) {
    case 'iso':
      return withYear(num(1), num(2) - 1, num(3), ref);
    case 'dayMonth':
    case 'monthDay': {
      const [day, monthName, year] = kind === 'dayMonth' ? [num(1), m[2], m[3]] : [num(2), m[1], m[3]];
      const month = MONTHS[(monthName ?? '').toLowerCase()];
      if (month === undefined) return null;
      return year ? withYear(Number(year), month, day, ref) : nextOccurrence(month, day, ref);
    }
    case 'numeric': {
      const [a, sep, b, year] = [num(1), m[2], num(3), m[4]];
      // A dot is always day.month (de, fr, es…); a slash is d/m in most of the world and m/d in the US,
      // so keep only readings that land within a plausible absence and return one only if it is unique.
      const readings = sep === '.' ? [[a, b]] : [[a, b], [b, a]];
      const found = new Map<number, Date>();
      for (const [day, month] of readings) {
        if (day === undefined || month === undefined) continue;
        const candidate = year ? withYear(Number(year), month - 1, day, ref) : nextOccurrence(month - 1, day, ref);
        if (candidate && inWindow(candidate, ref, sep === '.' ? MAX_DAYS_AHEAD_NO_YEAR : MAX_DAYS_AHEAD_AMBIGUOUS)) {
          found.set(candidate.getTime(), candidate);
        }
      }
      return found.size === 1 ? [...found.values()][0]! : null;
    }
    case 'weekday': {
      const target = WEEKDAYS[(m[1] ?? '').toLowerCase()];
      if (target === undefined) return null;
      const start = startOfUtcDay(ref);
      const ahead = ((target - start.getUTCDay() + 7) % 7) || 7;
      return new Date(start.getTime() + ahead * DAY_MS);
    }
    case 'tomorrow':
      return new Date(startOfUtcDay(ref).getTime() + DAY_MS);
    default:
      return null;
  }
}

/** Earliest date expression in `snippet`; a weekday only counts when no explicit date follows it closely. */
function firstDateIn(snippet: string, ref: Date): Date | null {
  let best: { index: number; date: Date | null; kind: string } | null = null;
  for (const { re, kind } of DATE_PATTERNS) {
    const m = re.exec(snippet);
    if (!m) continue;
    if (!best || m.index < best.index) best = { index: m.index, date: resolve(kind, m, ref), kind };
  }
  if (best?.kind === 'weekday') {
    // "Monday 12 January": prefer the explicit date right after the weekday name.
    const rest = snippet.slice(best.index);
    for (const { re, kind } of DATE_PATTERNS.slice(0, 4)) {
      const m = re.exec(rest);
      if (m && m.index <= 20) return resolve(kind, m, ref);
    }
  }
  return best?.date ?? null;
}

/** Return date named in an out-of-office text, as a UTC calendar day, or null when unsure. */
export function parseReturnDate(text: string, mailDate: Date | null): Date | null {
  if (!mailDate || Number.isNaN(mailDate.getTime())) return null;
  for (const phrase of text.matchAll(RETURN_PHRASE)) {
    const start = (phrase.index ?? 0) + phrase[0].length;
    const snippet = text.slice(start, start + LOOKAHEAD_CHARS).split(/\n\s*\n/)[0] ?? '';
    const date = firstDateIn(snippet, mailDate);
    if (date) return date;
  }
  return null;
}
