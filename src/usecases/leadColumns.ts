// CSV columns → a lead.upsert's fields. Built-in column names need no mapping; a mapping file renames
// another CRM's columns, translates its values (lifecycle stages, roles) and fills defaults.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { UseCaseError } from './errors.js';

/** The fields a column can fill. `attributes.<name>` and `account.attributes.<name>` fill free-form attributes. */
export const LEAD_FIELDS = [
  'email', 'firstName', 'lastName', 'title', 'persona', 'stage', 'timeZone',
  'owner.name', 'owner.email', 'owner.title', 'owner.phone',
  'account.key', 'account.name', 'account.domain', 'account.industry', 'account.tier', 'account.country', 'account.timeZone',
] as const;

const ATTRIBUTE = /^(account\.)?attributes\.[^.]+$/;
const isField = (f: string) => (LEAD_FIELDS as readonly string[]).includes(f) || ATTRIBUTE.test(f);

export const ColumnMapping = z.strictObject({
  /** CSV column → field (one of LEAD_FIELDS, attributes.X, account.attributes.X), or "-" to ignore it. */
  columns: z.record(z.string(), z.string().refine((f) => f === '-' || isField(f), { message: `map a column to one of ${LEAD_FIELDS.join(', ')}, attributes.<name>, account.attributes.<name>, or "-" to ignore it` })).default({}),
  /** Per field, a CRM's value → ours (e.g. stage: { marketingqualifiedlead: interest }); compared case-insensitively. */
  values: z.record(z.string(), z.record(z.string(), z.string())).default({}),
  /** Per field, the value when the column is missing or empty. */
  defaults: z.record(z.string(), z.string()).default({}),
});
export type ColumnMapping = z.infer<typeof ColumnMapping>;

export function loadMapping(path: string): ColumnMapping {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UseCaseError('invalid_mapping', `${path}: ${(err as Error).message}`, 'mapping');
  }
  const parsed = ColumnMapping.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UseCaseError('invalid_mapping', `${path}: ${issue.path.join('.')}: ${issue.message}`, 'mapping');
  }
  for (const f of [...Object.keys(parsed.data.values), ...Object.keys(parsed.data.defaults)]) {
    if (!isField(f)) throw new UseCaseError('invalid_mapping', `${path}: "${f}" is not a field; fields are ${LEAD_FIELDS.join(', ')}, attributes.<name>, account.attributes.<name>`, 'mapping');
  }
  return parsed.data;
}

export interface Columns {
  header: string[];
  /** Per column, the field it fills, or null when ignored. */
  fields: (string | null)[];
  ignored: string[];
}

export function resolveColumns(header: string[], mapping?: ColumnMapping): Columns {
  const fields = header.map((h) => {
    const name = h.trim();
    const mapped = mapping?.columns[name];
    if (mapped !== undefined) return mapped === '-' ? null : mapped;
    return isField(name) ? name : null;
  });
  const ignored = header.filter((h, i) => fields[i] === null && mapping?.columns[h.trim()] !== '-');
  if (!fields.includes('email') && !mapping?.defaults.email) {
    throw new UseCaseError('invalid_csv', `no column gives the email address (columns: ${header.join(', ').slice(0, 300)}); name one "email" or map it in a mapping file`, 'file');
  }
  return { header, fields, ignored };
}

/** One row as the object a lead.upsert carries (validated by the caller with LeadInput). */
export function leadFromRow(columns: Columns, record: string[], mapping?: ColumnMapping): Record<string, unknown> {
  const values = new Map<string, string>();
  columns.fields.forEach((f, i) => {
    const v = record[i]?.trim();
    if (f && v) values.set(f, v);
  });
  for (const [f, v] of Object.entries(mapping?.defaults ?? {})) if (!values.has(f)) values.set(f, v);
  for (const [f, table] of Object.entries(mapping?.values ?? {})) {
    const v = values.get(f);
    if (v === undefined) continue;
    const hit = Object.entries(table).find(([k]) => k.toLowerCase() === v.toLowerCase());
    if (hit) values.set(f, hit[1]);
  }
  const lead: Record<string, unknown> = { attributes: {} };
  const account: Record<string, unknown> = { attributes: {} };
  let owner: Record<string, unknown> | null = null;
  for (const [f, v] of values) {
    if (f.startsWith('account.attributes.')) (account.attributes as Record<string, unknown>)[f.slice(19)] = v;
    else if (f.startsWith('attributes.')) (lead.attributes as Record<string, unknown>)[f.slice(11)] = v;
    else if (f.startsWith('account.')) account[f.slice(8)] = v;
    else if (f.startsWith('owner.')) (owner ??= {})[f.slice(6)] = v;
    else lead[f] = v;
  }
  // A company with no name in the export is named after its domain (or the person's email domain).
  const email = typeof lead.email === 'string' ? lead.email : '';
  account.name ??= account.domain ?? (email.includes('@') ? email.split('@')[1] : undefined);
  if (owner) lead.owner = owner;
  lead.account = account;
  return lead;
}
