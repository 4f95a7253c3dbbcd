// Renders a template for one lead exactly as a send would (same compile cache, same render), without
// tracking or sending: for `nurture preview` and the preview page.
import { eq } from 'drizzle-orm';
import type { Config } from '../config/load.js';
import type { Db } from '../db/client.js';
import { senderFor } from '../mail/sender.js';
import { loadLeadAndAccount } from './engineInput.js';
import { leads } from '../db/schema.js';
import { loadTemplateSource, renderMessage, TemplateCache, type RenderContext, type RenderedMessage } from '../render/index.js';
import { UseCaseError } from './errors.js';
import { suggest } from '../config/issues.js';
import { listTemplates } from '../config/semantics.js';
import type { LeadInput } from './inputs.js';

/**
 * With the configuration, the preview is signed and addressed as a send would be: by the sender of the
 * first sequence step that uses the template (the rep for one-to-one mail, the brand for segmented), with
 * funnel.yaml's postalAddress in the footer.
 */
export async function previewTemplate(templates: TemplateCache, templatesDir: string, name: string, ctx: RenderContext, config?: Pick<Config, 'funnel' | 'sequences'>): Promise<RenderedMessage & { template: string; version: string }> {
  const known = listTemplates(templatesDir);
  if (!known.includes(name)) throw new UseCaseError('unknown_template', `no template "${name}" in ${templatesDir}${suggest(name, known)}; templates are ${known.join(', ')}`, 'template');
  const compiled = await templates.get(loadTemplateSource(templatesDir, name));
  const rendered = renderMessage(compiled, config ? { ...ctx, ...previewIdentity(config, name, ctx.owner) } : ctx, { trackLink: null, pixelUrl: null });
  return { ...rendered, template: name, version: compiled.version };
}

/** Who signs a preview of `template`, and the footer's address. */
export function previewIdentity(config: Pick<Config, 'funnel' | 'sequences'>, template: string, owner: RenderContext['owner']): Pick<RenderContext, 'sender' | 'postalAddress'> {
  for (const seq of config.sequences.values()) {
    const step = seq.steps.find((s) => s.type === 'email' && s.template === template);
    if (step?.type === 'email') return { sender: senderFor(config.funnel, seq, step, owner)?.signer ?? null, postalAddress: config.funnel.postalAddress ?? null };
  }
  return { postalAddress: config.funnel.postalAddress ?? null };
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
