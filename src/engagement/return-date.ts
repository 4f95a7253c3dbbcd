/**
 * "I will be back on Monday 12 January" → 2026-01-12. Only dates near a return phrase count, and a date is
 * returned only when it is unambiguous relative to the message's own Date: otherwise null, because a wrong
 * return date delays a follow-up for weeks while a missing one only falls back to the default pause.
 */

const MONTHS: Record<string, number> = {};
// English, German, French, Spanish, Dutch, Italian, Portuguese, Swedish, Polish and Russian (Polish and
// Russian in the genitive a date uses).
const MONTH_NAMES: readonly (readonly string[])[] = [
  ['january', 'jan', 'januar', 'jänner', 'janvier', 'janv', 'enero', 'ene', 'januari', 'gennaio', 'gen', 'janeiro', 'stycznia', 'styczeń', 'sty', 'января'],
  ['february', 'feb', 'februar', 'février', 'févr', 'fevrier', 'febrero', 'februari', 'febbraio', 'fevereiro', 'fev', 'lutego', 'luty', 'lut', 'февраля'],
  ['march', 'mar', 'märz', 'mars', 'marzo', 'maart', 'mrt', 'março', 'marco', 'marca', 'marzec', 'марта'],
  ['april', 'apr', 'avril', 'avr', 'abril', 'abr', 'aprile', 'kwietnia', 'kwiecień', 'kwi', 'апреля'],
  ['may', 'mai', 'mayo', 'mei', 'maggio', 'mag', 'maio', 'maj', 'maja', 'мая'],
  ['june', 'jun', 'juni', 'juin', 'junio', 'giugno', 'giu', 'junho', 'czerwca', 'czerwiec', 'cze', 'июня'],
  ['july', 'jul', 'juli', 'juillet', 'juil', 'julio', 'luglio', 'lug', 'julho', 'lipca', 'lipiec', 'lip', 'июля'],
  ['august', 'aug', 'août', 'aout', 'agosto', 'ago', 'augustus', 'augusti', 'sierpnia', 'sierpień', 'sie', 'августа'],
  ['september', 'sep', 'sept', 'septembre', 'septiembre', 'settembre', 'setembro', 'września', 'wrzesień', 'wrz', 'сентября'],
  ['october', 'oct', 'oktober', 'okt', 'octobre', 'octubre', 'ottobre', 'ott', 'outubro', 'października', 'październik', 'paź', 'октября'],
  ['november', 'nov', 'novembre', 'noviembre', 'novembro', 'listopada', 'listopad', 'lis', 'ноября'],
  ['december', 'dec', 'dezember', 'dez', 'décembre', 'decembre', 'diciembre', 'dic', 'dicembre', 'dezembro', 'grudnia', 'grudzień', 'gru', 'декабря'],
];
MONTH_NAMES.forEach((names, index) => names.forEach((n) => (MONTHS[n] = index)));

const WEEKDAYS: Record<string, number> = {};
const WEEKDAY_NAMES: readonly (readonly string[])[] = [
  ['sunday', 'sonntag', 'dimanche', 'domingo', 'zondag', 'domenica', 'söndag', 'niedziela', 'niedzielę', 'воскресенье'],
  ['monday', 'montag', 'lundi', 'lunes', 'maandag', 'lunedì', 'lunedi', 'segunda-feira', 'måndag', 'poniedziałek', 'понедельник'],
  ['tuesday', 'dienstag', 'mardi', 'martes', 'dinsdag', 'martedì', 'martedi', 'terça-feira', 'tisdag', 'wtorek', 'вторник'],
  ['wednesday', 'mittwoch', 'mercredi', 'miércoles', 'miercoles', 'woensdag', 'mercoledì', 'mercoledi', 'quarta-feira', 'onsdag', 'środa', 'środę', 'среду'],
  ['thursday', 'donnerstag', 'jeudi', 'jueves', 'donderdag', 'giovedì', 'giovedi', 'quinta-feira', 'torsdag', 'czwartek', 'четверг'],
  ['friday', 'freitag', 'vendredi', 'viernes', 'vrijdag', 'venerdì', 'venerdi', 'sexta-feira', 'fredag', 'piątek', 'пятницу'],
  ['saturday', 'samstag', 'samedi', 'sábado', 'sabado', 'zaterdag', 'sabato', 'lördag', 'sobota', 'sobotę', 'субботу'],
];
WEEKDAY_NAMES.forEach((names, index) => names.forEach((n) => (WEEKDAYS[n] = index)));

// \b is ASCII-only in JS regexes, so letter boundaries are spelled out for "août", "märz", "sábado".
const MONTH = `(?<!\\p{L})(${Object.keys(MONTHS).sort((a, b) => b.length - a.length).join('|')})(?!\\p{L})\\.?`;
const WEEKDAY = `(?<!\\p{L})(${Object.keys(WEEKDAYS).join('|')})(?!\\p{L})`;

type DateKind = 'iso' | 'numeric' | 'dayMonth' | 'monthDay' | 'weekday' | 'tomorrow' | 'dayOnly';

const DATE_PATTERNS: readonly { re: RegExp; kind: DateKind }[] = [
  { kind: 'iso', re: /\b(\d{4})-(\d{2})-(\d{2})\b/iu },
  { kind: 'numeric', re: /(?<![\d.\/])(\d{1,2})([./])(\d{1,2})(?:\2(\d{4}|\d{2}))?(?![\d\/]|\.\d)/iu },
  { kind: 'dayMonth', re: new RegExp(`\\b(\\d{1,2})(?:st|nd|rd|th|er|e|º|\\.)?\\s+(?:of\\s+|de\\s+)?${MONTH}(?:\\s+(?:de\\s+)?(\\d{4}))?`, 'iu') },
  { kind: 'monthDay', re: new RegExp(`${MONTH}\\s+(\\d{1,2})(?:st|nd|rd|th)?\\b(?:,?\\s+(\\d{4}))?`, 'iu') },
  { kind: 'weekday', re: new RegExp(`${WEEKDAY}`, 'iu') },
  { kind: 'tomorrow', re: /(?<!\p{L})(tomorrow|morgen|demain|mañana|domani|amanhã|imorgon|jutro)(?!\p{L})/iu },
  // "on the 14th", "am 14.", "le 14", "den 14:e": a day of the month, the next one from the mail's date.
  { kind: 'dayOnly', re: /(?<!\p{L})(?:the|am|le|el|il|den|op de|dia|dnia)\s+(\d{1,2})(?:st|nd|rd|th|:e|e|º|\.(?!\d))(?![\d\p{L}])/iu },
];

/**
 * Phrases that state the return itself ("I will be back on …"): preferred over the end of the absence.
 * English, German, French, Spanish, Dutch, Italian, Portuguese, Swedish, Polish.
 */
const RETURN_PHRASE =
  /\b(back|return(?:ing|s)?|in the office|available again|reachable again)\b|zurück|wieder|de retour|\bretour\b|regres\w*|volver\w*|de vuelta|\bterug\b|\bweer\b|rientr\w*|di nuovo|de volta|\bretorn\w*|tillbaka|\båter\b|z powrotem|wracam|powr[oó]t\w*|będę (?:dostępn\w*|w biurze)|вернусь|выйду на работу|буду в офисе|снова на связи/giu;

/** Phrases that end the absence ("out until …"): used when no return is stated. */
const UNTIL_PHRASE =
  /\b(until|till|through|thru|up to and including)\b|\bbis\b|jusqu['’]?(?:au|à)|\bhasta\b|tot en met|\bt\/m\b|\btot\b|fino (?:al|a|all['’])|\baté\b|till och med|\bt\.o\.m\.|\bdo(?=\s+\d)|(?<!\p{L})до(?=\s+\d)/giu;

/** "from 5 to 16 January", "vom 5. bis 16. Januar", "du 5 au 16 janvier": the absence ends on the second day. */
const RANGE = new RegExp(
  `(?<!\\p{L})(?:from|vom|du|del|dal|van|från|od|de)\\s+(?:the\\s+)?\\d{1,2}(?:st|nd|rd|th|er|e|\\.)?(?:\\s*${MONTH})?\\s*(?:-|–|—|to|bis|au|al|tot(?: en met)?|t\\/m|till|do|a|até)\\s*`,
  'giu',
);

/** "Ab dem 14.01. bin ich wieder im Büro": a start of presence before the return word. */
const FROM_WORD = /(?<!\p{L})(?:ab|vanaf|from|a partire d\w*|a partir d\w*|à partir d\w*|från och med|från|fr\.o\.m\.|od)\s+(?:dem\s+|de\s+|del\s+|dal\s+|den\s+|the\s+|on\s+)?$/iu;

const LOOKAHEAD_CHARS = 90;
const LOOKBEHIND_CHARS = 70;
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

function resolve(kind: DateKind, m: RegExpExecArray, ref: Date): Date | null {
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
    case 'dayOnly': {
      const start = startOfUtcDay(ref);
      for (let k = 0; k < 3; k++) {
        const months = start.getUTCMonth() + k;
        // utcDay refuses the 31st of a 30-day month: the next month that has the day is meant.
        const candidate = utcDay(start.getUTCFullYear() + Math.floor(months / 12), months % 12, num(1));
        if (candidate && candidate.getTime() >= start.getTime()) return candidate;
      }
      return null;
    }
    default:
      return null;
  }
}

type Found = { index: number; end: number; date: Date | null; kind: DateKind };

/** Earliest date expression in `snippet`; a weekday only counts when no explicit date follows it closely. */
function firstDateIn(snippet: string, ref: Date): Found | null {
  let best: Found | null = null;
  for (const { re, kind } of DATE_PATTERNS) {
    const m = re.exec(snippet);
    if (!m) continue;
    if (!best || m.index < best.index) best = { index: m.index, end: m.index + m[0].length, date: resolve(kind, m, ref), kind };
  }
  if (best?.kind === 'weekday') {
    // "Monday 12 January": prefer the explicit date right after the weekday name.
    const rest = snippet.slice(best.index);
    for (const { re, kind } of DATE_PATTERNS.slice(0, 4)) {
      const m = re.exec(rest);
      if (m && m.index <= 20) return { ...best, date: resolve(kind, m, ref) };
    }
  }
  return best;
}

/** The last date expression ending right before a return word ("ab dem 14.01. bin ich wieder"). */
function dateBefore(text: string, at: number, ref: Date): Date | null {
  const from = Math.max(0, at - LOOKBEHIND_CHARS);
  const window = text.slice(from, at).split(/\n\s*\n/).pop() ?? '';
  for (let i = 0; i < window.length; i++) {
    if (!FROM_WORD.test(window.slice(0, i))) continue;
    const found = firstDateIn(window.slice(i), ref);
    if (found?.date && found.index === 0) return found.date;
  }
  return null;
}

function datesAfter(text: string, phrase: RegExp, ref: Date): { index: number; date: Date }[] {
  const out: { index: number; date: Date }[] = [];
  for (const m of text.matchAll(phrase)) {
    const start = (m.index ?? 0) + m[0].length;
    const snippet = text.slice(start, start + LOOKAHEAD_CHARS).split(/\n\s*\n/)[0] ?? '';
    const found = firstDateIn(snippet, ref);
    if (found?.date) out.push({ index: m.index ?? 0, date: found.date });
  }
  return out;
}

/**
 * Japanese and Chinese write the date before the return: "1月13日（火）より出社いたします", "1月13日以降に順次返信
 * いたします", "1月13日回来". A month-day date followed closely by a return (出社, 戻り, 復帰, a reply resuming,
 * 回来, 上班).
 */
const CJK_RETURN = /(?:(\d{4})年)?(\d{1,2})月(\d{1,2})日(?:\s*[（(][^）)]{1,3}[）)])?\s*(?:より|から|以降|に|起|后|後)?[^。\n]{0,10}?(?:出社|戻り|戻ります|復帰|返信|回来|返回|上班|回到)/u;

function cjkReturn(text: string, ref: Date): Date | null {
  const m = CJK_RETURN.exec(text);
  if (!m) return null;
  return m[1] ? withYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]), ref) : nextOccurrence(Number(m[2]) - 1, Number(m[3]), ref);
}

export type ReturnDateOptions = {
  /** The sender's UTC offset (from the Date header): "tomorrow" is the sender's tomorrow. */
  utcOffsetMinutes?: number | null;
};

/**
 * Return date named in an out-of-office text, as a UTC calendar day, or null when unsure. A stated return
 * ("back in the office on Monday 19 January") wins over the end of the absence ("out from 5 to 16
 * January"); partial dates resolve from `mailDate` (the mail's Date, or when it was received).
 */
export function parseReturnDate(text: string, mailDate: Date | null, options: ReturnDateOptions = {}): Date | null {
  if (!mailDate || Number.isNaN(mailDate.getTime())) return null;
  // The sender's own calendar day: a reply written late on Monday in California is Tuesday in UTC.
  const ref = new Date(mailDate.getTime() + (options.utcOffsetMinutes ?? 0) * 60_000);
  const flat = text.replace(/[\u00a0\u202f]/g, ' ');

  const stated = datesAfter(flat, RETURN_PHRASE, ref);
  for (const m of flat.matchAll(RETURN_PHRASE)) {
    const before = dateBefore(flat, m.index ?? 0, ref);
    if (before) stated.push({ index: m.index ?? 0, date: before });
  }
  if (stated.length) return stated.sort((a, b) => a.index - b.index)[0]!.date;
  const cjk = cjkReturn(flat, ref);
  if (cjk) return cjk;

  const ends = [...datesAfter(flat, UNTIL_PHRASE, ref), ...datesAfter(flat, RANGE, ref)];
  return ends.length ? ends.sort((a, b) => a.index - b.index)[0]!.date : null;
}
