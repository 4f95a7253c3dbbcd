// JSON Schema of the YAML files, from the zod schemas: what editors use to check and complete YAML.
import { z } from 'zod';
import { ConditionSchema, FieldFilterSchema, FunnelSchema, SequenceSchema } from './schema.js';
import { MailboxesSchema } from './mailboxes.js';

/** JSON Schema of what may be written (io: input, so keys with defaults are optional). */
export function jsonSchemaOf(schema: z.ZodType, title: string): Record<string, unknown> {
  // Refinements (durations, time zones) can't be expressed: they are left as plain strings ('any'), and the
  // recursive conditions and filters come out as $defs referenced by $ref, named so they read "Condition".
  const names = z.registry<{ id: string }>();
  names.add(ConditionSchema, { id: 'Condition' });
  names.add(FieldFilterSchema, { id: 'FieldFilter' });
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', metadata: names }) as Record<string, unknown>;
  return { ...json, title };
}

export const SCHEMA_FILES = {
  funnel: { file: 'schema/funnel.schema.json', schema: FunnelSchema, title: 'nurture funnel.yaml' },
  sequence: { file: 'schema/sequence.schema.json', schema: SequenceSchema, title: 'nurture sequence (sequences/*.yaml)' },
  mailboxes: { file: 'schema/mailboxes.schema.json', schema: MailboxesSchema, title: "nurture mailboxes.yaml (reps' own mailboxes)" },
} as const;
