// Writes schema/funnel.schema.json, schema/sequence.schema.json and schema/mailboxes.schema.json from the zod schemas, so an editor
// (via `# yaml-language-server: $schema=...` in each YAML file) checks and completes what a marketer types.
// Run after changing src/config/schema.ts:  npx tsx scripts/gen-schema.ts
// test/unit/config-schema.test.ts fails while the committed files are out of date.
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { jsonSchemaOf, SCHEMA_FILES } from '../src/config/jsonSchema.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** File name (relative to the repo root) → its text, exactly as committed. */
export function generateSchemas(): Record<string, string> {
  const text = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  return {
    [SCHEMA_FILES.funnel.file]: text(jsonSchemaOf(SCHEMA_FILES.funnel.schema, SCHEMA_FILES.funnel.title)),
    [SCHEMA_FILES.sequence.file]: text(jsonSchemaOf(SCHEMA_FILES.sequence.schema, SCHEMA_FILES.sequence.title)),
    [SCHEMA_FILES.mailboxes.file]: text(jsonSchemaOf(SCHEMA_FILES.mailboxes.schema, SCHEMA_FILES.mailboxes.title)),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [file, text] of Object.entries(generateSchemas())) {
    const path = join(ROOT, file);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    console.log(`wrote ${file}`);
  }
}
