// `nurture preview <template> --lead <file.yaml|file.json|email> [--out dir]`: writes the HTML and text
// parts and prints subject and preheader. A lead file needs no database; an email looks the lead up.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { databaseUrlWith, readEnv } from '../config/env.js';
import { inspectConfig } from '../config/load.js';
import { connectDatabase } from '../db/client.js';
import { TemplateCache } from '../render/index.js';
import { LeadInput } from '../usecases/inputs.js';
import { fileLeadContext, previewTemplate, storedLeadContext } from '../usecases/previewTemplate.js';
import { readRuntimeFile } from './runtimeFile.js';

export async function preview(o: { template: string; lead: string; out?: string; write?: (l: string) => void }): Promise<number> {
  const write = o.write ?? ((l: string) => console.log(l));
  const env = readEnv();
  const templates = new TemplateCache();
  let renderCtx;
  if (existsSync(o.lead)) {
    const parsed = LeadInput.safeParse(parse(readFileSync(o.lead, 'utf8')));
    if (!parsed.success) {
      for (const i of parsed.error.issues) write(`${o.lead}: ${i.path.join('.') || '(top level)'}: ${i.message}`);
      return 1;
    }
    renderCtx = fileLeadContext(parsed.data);
  } else {
    const databaseUrl = env.DATABASE_URL ?? readRuntimeFile(env.NURTURE_DATA_DIR)?.databaseUrl;
    if (!databaseUrl) throw new Error(`${o.lead} is not a file, and there is no database to look the lead up in (set DATABASE_URL or start nurture)`);
    const database = connectDatabase(databaseUrlWith(databaseUrl, { prepare: env.DB_PREPARE }), { max: 1 });
    try {
      renderCtx = await storedLeadContext(database.db, env.PUBLIC_URL ?? `http://${env.HOST}:${env.PORT}`, o.lead);
    } finally {
      await database.close();
    }
  }
  // Signed and addressed as a send would be, when the configuration loads; the template alone otherwise.
  const { config } = inspectConfig(resolve(env.NURTURE_CONFIG_DIR), { templatesDir: resolve(env.NURTURE_TEMPLATES_DIR) });
  const r = await previewTemplate(templates, env.NURTURE_TEMPLATES_DIR, o.template, renderCtx, config ?? undefined);
  write(`template   ${r.template} (version ${r.version})`);
  write(`subject    ${r.subject}`);
  write(`preheader  ${r.preheader}`);
  write(`links      ${r.links.map((l) => `${l.id}${l.tag ? ` [${l.tag}]` : ''} → ${l.url}`).join('\n           ') || '(none)'}`);
  if (o.out) {
    const dir = resolve(o.out);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${o.template}.html`), r.html);
    writeFileSync(join(dir, `${o.template}.txt`), r.text);
    write(`wrote      ${join(dir, `${o.template}.html`)} and .txt`);
  } else {
    write('');
    write(r.text);
  }
  return 0;
}
