// Renders a template for one lead exactly as a send would (same compile cache, same render), without
// tracking or sending: for `nurture preview` and the preview page.
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { loadLeadAndAccount } from './engineInput.js';
import { leads } from '../db/schema.js';
import { loadTemplateSource, renderMessage, TemplateCache, type RenderContext, type RenderedMessage } from '../render/index.js';
import { UseCaseError } from './errors.js';
import type { LeadInput } from './inputs.js';

export async function previewTemplate(templates: TemplateCache, templatesDir: string, name: string, ctx: RenderContext): Promise<RenderedMessage & { template: string; version: string }> {
  const compiled = await templates.get(loadTemplateSource(templatesDir, name));
  const rendered = renderMessage(compiled, ctx, { trackLink: null, pixelUrl: null });
  return { ...rendered, template: name, version: compiled.version };
}

/** The render context of a lead stored in the database. */
export async function storedLeadContext(db: Db, publicUrl: string, email: string): Promise<RenderContext> {
  const [row] = await db.select({ id: leads.id }).from(leads).where(eq(leads.email, email.trim().toLowerCase()));
  const la = row ? await loadLeadAndAccount(db, row.id) : null;
  if (!la) throw new UseCaseError('unknown_lead', `no lead with email ${email}`, 'lead');
  return { lead: la.lead, account: la.account, owner: la.lead.owner, sequence: { id: 'preview', name: 'Preview' }, links: { unsubscribe: `${publicUrl}/u/preview` } };
}

/** The render context of a lead described in a file (the shape of a lead.upsert trigger's `lead`). */
export function fileLeadContext(input: LeadInput): RenderContext {
  return {
    lead: { ...input, email: input.email.toLowerCase(), stage: input.stage ?? 'awareness', attributes: input.attributes },
    account: { ...input.account, attributes: input.account.attributes },
    owner: input.owner ?? null,
    sequence: { id: 'preview', name: 'Preview' },
    links: { unsubscribe: 'https://example.invalid/u/preview' },
  };
}
