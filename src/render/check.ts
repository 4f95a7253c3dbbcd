import { collectTokenUses } from './ast.js';
import { handlebarsPieces, parseHandlebars, type CompiledTemplate } from './compile.js';
import { ALWAYS_SET_FIELDS } from './context.js';
import { BUILTIN_HELPER_NAMES, HELPER_NAMES } from './helpers.js';
import type { TemplateSource } from './templates.js';

export type TemplateIssueCode =
  | 'unknown_token'
  | 'optional_without_default'
  | 'missing_unsubscribe'
  | 'missing_postal_address'
  | 'unknown_required_field'
  | 'unused_link';

export interface TemplateIssue {
  code: TemplateIssueCode;
  severity: 'error' | 'warning';
  file: string;
  line: number;
  column?: number;
  field?: string;
  message: string;
}

export interface KnownFields {
  /** Context fields the funnel provides, e.g. 'lead.firstName', 'lead.attributes.plan'. */
  fields: string[];
  /** Segmented (one-to-many) sends must carry a visible unsubscribe link. */
  segmented: boolean;
}

const HELPERS: ReadonlySet<string> = new Set([...HELPER_NAMES, ...BUILTIN_HELPER_NAMES]);
const UNSUBSCRIBE_TOKEN = /\{\{\s*links\.unsubscribe\s*\}\}/;
const POSTAL_ADDRESS_TOKEN = /\{\{\s*postalAddress\s*\}\}/;

/** Static checks for `nurture validate`; compile errors are TemplateErrors, these are what still compiles but reads wrong. */
export function checkTemplate(source: TemplateSource, compiled: CompiledTemplate, known: KnownFields): TemplateIssue[] {
  const builtIn = [...ALWAYS_SET_FIELDS, 'links.preferences', ...Object.keys(source.frontMatter.links).map((id) => `links.${id}`)];
  const knownFields = new Set([...known.fields, ...builtIn]);
  const alwaysSet = new Set<string>([...ALWAYS_SET_FIELDS, ...source.frontMatter.required, ...builtIn.filter((f) => f !== 'links.preferences')]);
  const isKnown = (field: string) => knownFields.has(field) || [...knownFields].some((k) => k.startsWith(`${field}.`));
  const issues: TemplateIssue[] = [];
  const usedLinks = new Set<string>();

  for (const piece of handlebarsPieces(source)) {
    const uses = collectTokenUses(parseHandlebars(piece.text), HELPERS);
    for (const use of uses.fields) {
      const at = { file: piece.file, line: piece.firstLine + use.line - 1, column: use.column, field: use.field };
      if (use.field.startsWith('links.')) usedLinks.add(use.field.slice('links.'.length));
      if (!isKnown(use.field)) {
        issues.push({ code: 'unknown_token', severity: 'error', ...at, message: `{{${use.field}}} is not a known field${suggest(use.field, knownFields)}` });
      } else if (use.output && !use.withFallback && !use.guarded && !alwaysSet.has(use.field)) {
        issues.push({
          code: 'optional_without_default',
          severity: 'warning',
          ...at,
          message: `${use.field} can be empty: use {{default ${use.field} "…"}}, wrap it in {{#if ${use.field}}}, or list it under required`,
        });
      }
    }
  }

  const frontMatterLine = (key: string) => source.keyLines[key] ?? 2;
  for (const field of source.frontMatter.required) {
    if (!isKnown(field)) {
      issues.push({ code: 'unknown_required_field', severity: 'error', file: source.file, line: frontMatterLine('required'), field, message: `required field ${field} is not a known field` });
    }
  }
  for (const id of Object.keys(source.frontMatter.links)) {
    if (!usedLinks.has(id)) {
      issues.push({ code: 'unused_link', severity: 'warning', file: source.file, line: frontMatterLine('links'), field: `links.${id}`, message: `declared link "${id}" is not used in the template` });
    }
  }
  if (known.segmented && !UNSUBSCRIBE_TOKEN.test(compiled.htmlTemplate)) {
    issues.push({
      code: 'missing_unsubscribe',
      severity: 'error',
      file: source.file,
      line: source.bodyLine,
      message: 'segmented templates must link {{links.unsubscribe}} (include partials/footer.mjml)',
    });
  }
  // CAN-SPAM and most of its cousins: bulk mail carries the sender's postal address.
  if (known.segmented && !POSTAL_ADDRESS_TOKEN.test(compiled.htmlTemplate)) {
    issues.push({
      code: 'missing_postal_address',
      severity: 'error',
      file: source.file,
      line: source.bodyLine,
      message: 'segmented templates must show {{postalAddress}} (funnel.yaml\'s postalAddress; include partials/footer.mjml)',
    });
  }
  return issues.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || (a.column ?? 0) - (b.column ?? 0));
}

function suggest(field: string, known: ReadonlySet<string>): string {
  const close = [...known].find((k) => k.toLowerCase() === field.toLowerCase() || distance(k, field) <= 2);
  return close ? ` (did you mean ${close}?)` : '';
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}
