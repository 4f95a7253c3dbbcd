// The JSON Schema editors use is generated from the zod schemas and committed; this keeps it from drifting,
// and checks that the sample YAML files are valid against it (with a small structural checker, no package).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generateSchemas } from '../../scripts/gen-schema.js';
import { STEP_TYPES } from '../../src/config/schema.js';

type Json = Record<string, unknown>;
const committed = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Json;

/**
 * The subset of JSON Schema the generated files use: type, enum, const, properties, required,
 * additionalProperties, items, minItems, pattern, anyOf/oneOf and local $ref. Returns "path: problem" lines.
 */
function check(schema: Json, value: unknown, root: Json, path = '$'): string[] {
  if (typeof schema.$ref === 'string') {
    const target = schema.$ref.replace(/^#\//, '').split('/').reduce<unknown>((node, key) => (node as Json)[key], root);
    return check(target as Json, value, root, path);
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const options = schema[key] as Json[] | undefined;
    if (!options) continue;
    const passing = options.filter((o) => check(o, value, root, path).length === 0).length;
    if (key === 'oneOf' ? passing !== 1 : passing === 0) return [`${path}: matches ${passing} of the ${key} options`];
  }
  const out: string[] = [];
  const type = schema.type as string | undefined;
  const actual = value === null ? 'null' : Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value;
  if (type && !(type === actual || (type === 'number' && actual === 'integer'))) return [`${path}: expected ${type}, got ${actual}`];
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) out.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if ('const' in schema && schema.const !== value) out.push(`${path}: expected ${JSON.stringify(schema.const)}`);
  if (typeof schema.pattern === 'string' && typeof value === 'string' && !new RegExp(schema.pattern, 'u').test(value)) out.push(`${path}: "${value}" does not match ${schema.pattern}`);
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) out.push(`${path}: fewer than ${schema.minItems} items`);
    if (schema.items) value.forEach((v, i) => out.push(...check(schema.items as Json, v, root, `${path}[${i}]`)));
  } else if (actual === 'object') {
    const obj = value as Json;
    const props = (schema.properties ?? {}) as Record<string, Json>;
    for (const k of (schema.required ?? []) as string[]) if (!(k in obj)) out.push(`${path}: missing ${k}`);
    for (const [k, v] of Object.entries(obj)) {
      if (props[k]) out.push(...check(props[k], v, root, `${path}.${k}`));
      else if (schema.additionalProperties === false) out.push(`${path}: unknown key ${k}`);
      else if (typeof schema.additionalProperties === 'object') out.push(...check(schema.additionalProperties as Json, v, root, `${path}.${k}`));
    }
    if (schema.propertyNames && typeof schema.propertyNames === 'object') {
      for (const k of Object.keys(obj)) out.push(...check(schema.propertyNames as Json, k, root, `${path} key ${k}`));
    }
  }
  return out;
}

const sequenceFiles = readdirSync('config/sequences').filter((f) => f.endsWith('.yaml')).map((f) => join('config/sequences', f));

describe('the JSON Schema for editors', () => {
  it('is up to date with the zod schemas (run `npx tsx scripts/gen-schema.ts` after changing them)', () => {
    const generated = generateSchemas();
    expect(Object.keys(generated).sort()).toEqual(['schema/funnel.schema.json', 'schema/mailboxes.schema.json', 'schema/sequence.schema.json']);
    for (const [file, text] of Object.entries(generated)) {
      expect(existsSync(file), `${file} is committed`).toBe(true);
      expect(readFileSync(file, 'utf8'), `${file} is stale`).toBe(text);
    }
  });

  it('turns the recursive conditions and filters into $defs referenced by $ref', () => {
    const funnel = committed('schema/funnel.schema.json');
    const sequence = committed('schema/sequence.schema.json');
    expect(Object.keys(funnel.$defs as Json).sort()).toEqual(['Condition', 'FieldFilter']);
    expect(Object.keys(sequence.$defs as Json).sort()).toEqual(['Condition', 'FieldFilter']);
    expect((sequence.properties as Json).audience).toEqual({ $ref: '#/$defs/FieldFilter' });
    expect(JSON.stringify((sequence.$defs as Json).Condition)).toContain('"$ref":"#/$defs/Condition"');
  });

  it('describes the key choices a marketer makes', () => {
    const sequence = committed('schema/sequence.schema.json');
    const props = sequence.properties as Record<string, Json>;
    expect(props.mode!.enum).toEqual(['one_to_one', 'segmented']);
    expect(sequence.required).toEqual(['name', 'mode', 'stage', 'steps']);
    expect(sequence.additionalProperties).toBe(false);
    const stepTypes = ((props.steps!.items as Json).oneOf as Json[]).map((s) => ((s.properties as Record<string, Json>).type!).const);
    expect(stepTypes).toEqual([...STEP_TYPES]);
    const funnel = committed('schema/funnel.schema.json');
    expect(funnel.required).toEqual(expect.arrayContaining(['stages', 'personas', 'senders']));
  });

  it('is referenced by every sample YAML file, at a path that exists', () => {
    for (const file of ['config/funnel.yaml', ...sequenceFiles]) {
      const first = readFileSync(file, 'utf8').split('\n')[0]!;
      const m = /^# yaml-language-server: \$schema=(\S+)$/.exec(first);
      expect(m, `${file} names its schema on line 1`).not.toBeNull();
      const target = resolve(dirname(file), m![1]!);
      expect(target).toBe(resolve(file === 'config/funnel.yaml' ? 'schema/funnel.schema.json' : 'schema/sequence.schema.json'));
    }
  });

  it('accepts the sample funnel and sequences', () => {
    const funnel = committed('schema/funnel.schema.json');
    const sequence = committed('schema/sequence.schema.json');
    expect(check(funnel, parse(readFileSync('config/funnel.yaml', 'utf8')), funnel)).toEqual([]);
    expect(sequenceFiles).toHaveLength(4);
    for (const file of sequenceFiles) expect(check(sequence, parse(readFileSync(file, 'utf8')), sequence), file).toEqual([]);
  });

  it('accepts the sample mailboxes files, which name their schema', () => {
    const schema = committed('schema/mailboxes.schema.json');
    for (const file of ['config/mailboxes.yaml', 'examples/mailboxes.yaml']) {
      expect(readFileSync(file, 'utf8').split('\n')[0]).toBe('# yaml-language-server: $schema=../schema/mailboxes.schema.json');
      expect(check(schema, parse(readFileSync(file, 'utf8')), schema), file).toEqual([]);
    }
  });

  it('rejects what the loader rejects: an unknown step type, mode or key, and a misspelt condition', () => {
    const sequence = committed('schema/sequence.schema.json');
    const sample = parse(readFileSync('config/sequences/interest-rep-demo.yaml', 'utf8')) as Json & { steps: Json[] };
    const variant = (change: (s: typeof sample) => void) => {
      const copy = structuredClone(sample);
      change(copy);
      return check(sequence, copy, sequence);
    };
    expect(variant((s) => (s.steps[0]!.type = 'emial'))).toEqual(['$.steps[0]: matches 0 of the oneOf options']);
    expect(variant((s) => (s.mode = 'broadcast'))).toEqual(['$.mode: "broadcast" is not one of ["one_to_one","segmented"]']);
    expect(variant((s) => (s.prority = 10))).toEqual(['$: unknown key prority']);
    expect(variant((s) => (s.steps[2]!.when = { scor: { gte: 3 } }))).toEqual(['$.steps[2]: matches 0 of the oneOf options']);
    expect(variant((s) => delete s.mode)).toEqual(['$: missing mode']);
  });
});
