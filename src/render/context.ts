export interface RenderLead {
  email: string;
  firstName?: string | null;
  lastName?: string | null;
  title?: string | null;
  persona: string;
  stage: string;
  timeZone?: string | null;
  attributes: Record<string, unknown>;
}

export interface RenderAccount {
  name: string;
  domain?: string | null;
  industry?: string | null;
  tier?: string | null;
  country?: string | null;
  attributes: Record<string, unknown>;
}

export interface RenderOwner {
  name: string;
  email: string;
  title?: string | null;
  phone?: string | null;
}

/** Who the message is from, as its signature shows them: the rep for one-to-one mail, the brand sender for segmented mail. */
export interface RenderSender {
  name: string;
  email: string;
  title?: string | null;
  phone?: string | null;
  /** Where replies go when it isn't `email` (a brand sender's replyTo). */
  replyTo?: string | null;
}

export interface RenderContext {
  lead: RenderLead;
  account: RenderAccount;
  owner: RenderOwner | null;
  /** The signer; absent (a preview without a sequence), the owner signs. */
  sender?: RenderSender | null;
  /** funnel.yaml's postalAddress, for the footer of segmented mail. */
  postalAddress?: string | null;
  sequence: { id: string; name: string };
  links: { unsubscribe: string; preferences?: string };
}

/** Fields a template may use that always have a value, so they need no fallback. */
export const ALWAYS_SET_FIELDS = [
  'lead.email', 'lead.persona', 'lead.stage',
  'account.name',
  'sequence.id', 'sequence.name',
  'links.unsubscribe',
  'subject', 'preheader',
] as const;

/** Fields that may be empty for some recipients. owner.* is empty when the lead has no owner. */
export const OPTIONAL_FIELDS = [
  'lead.firstName', 'lead.lastName', 'lead.title', 'lead.timeZone',
  'account.domain', 'account.industry', 'account.tier', 'account.country',
  'owner', 'owner.name', 'owner.email', 'owner.title', 'owner.phone',
  'sender', 'sender.name', 'sender.email', 'sender.title', 'sender.phone', 'sender.replyTo',
  'postalAddress',
  'links.preferences',
] as const;

/** Every fixed field of a RenderContext; attribute fields (lead.attributes.x) come from the funnel config. */
export const CONTEXT_FIELDS: readonly string[] = [...ALWAYS_SET_FIELDS, ...OPTIONAL_FIELDS];

/**
 * The object Handlebars sees. Every fixed field exists (null when unknown) so strict mode only throws
 * for a token that is truly not part of the context, never for an optional field left out by the caller.
 */
export function toTemplateData(
  ctx: RenderContext,
  declaredLinks: Record<string, string>,
  extra: { subject: string; preheader: string },
): Record<string, unknown> {
  const { lead, account, owner } = ctx;
  const sender: RenderSender | null = ctx.sender === undefined ? owner : ctx.sender;
  return {
    lead: {
      email: lead.email,
      firstName: lead.firstName ?? null,
      lastName: lead.lastName ?? null,
      title: lead.title ?? null,
      persona: lead.persona,
      stage: lead.stage,
      timeZone: lead.timeZone ?? null,
      attributes: lead.attributes,
    },
    account: {
      name: account.name,
      domain: account.domain ?? null,
      industry: account.industry ?? null,
      tier: account.tier ?? null,
      country: account.country ?? null,
      attributes: account.attributes,
    },
    owner: owner ? { name: owner.name, email: owner.email, title: owner.title ?? null, phone: owner.phone ?? null } : null,
    sender: sender ? { name: sender.name, email: sender.email, title: sender.title ?? null, phone: sender.phone ?? null, replyTo: sender.replyTo ?? null } : null,
    postalAddress: ctx.postalAddress ?? null,
    sequence: { id: ctx.sequence.id, name: ctx.sequence.name },
    links: { ...declaredLinks, unsubscribe: ctx.links.unsubscribe, preferences: ctx.links.preferences ?? null },
    subject: extra.subject,
    preheader: extra.preheader,
  };
}

export function lookupPath(data: unknown, field: string): unknown {
  let value: unknown = data;
  for (const part of field.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}
