import Handlebars from 'handlebars';

export type HandlebarsEnv = typeof Handlebars;

/** Helpers with a fallback argument: a field used through them never renders empty. */
export const FALLBACK_HELPERS = new Set(['default', 'firstName']);

export function isEmptyValue(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'string' && value.trim() === '');
}

const DATE_STYLES = new Set(['full', 'long', 'medium', 'short']);

type HelperOptions = Handlebars.HelperOptions & { data?: { root?: Record<string, unknown> } };

function leadOf(options: HelperOptions): Record<string, unknown> {
  const lead = options.data?.root?.['lead'];
  return lead && typeof lead === 'object' ? (lead as Record<string, unknown>) : {};
}

/** Only all-lower or ALL-UPPER names are re-cased; "McKenzie" or "de la Cruz" stay as the lead typed them. */
function tidyName(name: string): string {
  const trimmed = name.trim();
  if (trimmed !== trimmed.toLowerCase() && trimmed !== trimmed.toUpperCase()) return trimmed;
  return trimmed.toLowerCase().replace(/(^|[\s'-])(\p{L})/gu, (_m, sep: string, ch: string) => sep + ch.toUpperCase());
}

/** Values that are clearly not a first name (an address, initials with digits) read worse than the fallback. */
function usableFirstName(value: unknown): string | null {
  if (typeof value !== 'string' || isEmptyValue(value)) return null;
  if (/[@\d]/.test(value)) return null;
  return tidyName(value);
}

function toDate(value: unknown): Date | null {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value;
  if (typeof value === 'string' || typeof value === 'number') {
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? null : date;
  }
  return null;
}

function formatDate(date: Date, style: string, timeZone: unknown, locale: unknown): string {
  const dateStyle = (DATE_STYLES.has(style) ? style : 'long') as Intl.DateTimeFormatOptions['dateStyle'];
  const lang = typeof locale === 'string' && locale ? locale : 'en-US';
  try {
    return new Intl.DateTimeFormat(lang, { dateStyle, timeZone: typeof timeZone === 'string' && timeZone ? timeZone : 'UTC' }).format(date);
  } catch {
    // An unknown zone in CRM data should not hold the send; UTC is still a correct date.
    return new Intl.DateTimeFormat(lang, { dateStyle, timeZone: 'UTC' }).format(date);
  }
}

function inList(value: unknown, args: unknown[]): boolean {
  return args.some((arg) => arg === value);
}

/** Helper names, for Handlebars' knownHelpersOnly and for `nurture validate`. */
export const HELPER_NAMES = [
  'default', 'firstName', 'date', 'upper', 'lower', 'capitalize',
  'eq', 'ne', 'and', 'or', 'not', 'ifPersona', 'ifStage',
] as const;

export const BUILTIN_HELPER_NAMES = ['if', 'unless', 'each', 'with', 'lookup', 'log'] as const;

/** A private Handlebars environment: helpers never leak into, or depend on, the global instance. */
export function createHandlebars(): HandlebarsEnv {
  const hb = Handlebars.create();
  const args = (all: unknown[]) => all.slice(0, -1);
  const text = (value: unknown) => (isEmptyValue(value) ? '' : String(value));

  hb.registerHelper('default', (value: unknown, fallback: unknown) => (isEmptyValue(value) ? text(fallback) : value));
  hb.registerHelper('firstName', function (this: unknown, ...all: unknown[]) {
    const options = all[all.length - 1] as HelperOptions;
    const fallback = all.length > 1 ? text(all[0]) : 'there';
    return usableFirstName(leadOf(options)['firstName']) ?? fallback;
  });
  hb.registerHelper('date', (value: unknown, ...rest: unknown[]) => {
    const options = rest[rest.length - 1] as HelperOptions;
    const style = rest.length > 1 && typeof rest[0] === 'string' ? rest[0] : 'long';
    const date = toDate(value);
    if (!date) return '';
    const timeZone = options.hash['tz'] ?? leadOf(options)['timeZone'];
    return formatDate(date, style, timeZone, options.hash['locale']);
  });
  hb.registerHelper('upper', (value: unknown) => text(value).toUpperCase());
  hb.registerHelper('lower', (value: unknown) => text(value).toLowerCase());
  hb.registerHelper('capitalize', (value: unknown) => {
    const s = text(value);
    return s.charAt(0).toUpperCase() + s.slice(1);
  });
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hb.registerHelper('ne', (a: unknown, b: unknown) => a !== b);
  hb.registerHelper('and', (...all: unknown[]) => args(all).every(Boolean));
  hb.registerHelper('or', (...all: unknown[]) => args(all).some(Boolean));
  hb.registerHelper('not', (value: unknown) => !value);
  hb.registerHelper('ifPersona', function (this: unknown, ...all: unknown[]) {
    const options = all[all.length - 1] as HelperOptions;
    return inList(leadOf(options)['persona'], args(all)) ? options.fn(this) : options.inverse(this);
  });
  hb.registerHelper('ifStage', function (this: unknown, ...all: unknown[]) {
    const options = all[all.length - 1] as HelperOptions;
    return inList(leadOf(options)['stage'], args(all)) ? options.fn(this) : options.inverse(this);
  });
  return hb;
}

export const KNOWN_HELPERS: Record<string, boolean> = Object.fromEntries(HELPER_NAMES.map((name) => [name, true]));
