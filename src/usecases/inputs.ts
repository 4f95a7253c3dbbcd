// The shapes the outside world sends us (webhooks, CLI): one zod schema each, shared by every entry point.
import { z } from 'zod';

// A value that may reach a header (a name in From/To, a subject token) must be one line.
const line = z.string().max(500).regex(/^[^\r\n]*$/, 'must be a single line (no CR or LF)');
const optionalLine = line.nullish();

export const OwnerInput = z.object({
  name: line.min(1),
  email: z.string(),
  title: optionalLine,
  phone: optionalLine,
});

export const AccountInput = z.object({
  /** The CRM's account id; defaults to the domain, then the lead's email domain. */
  key: line.min(1).optional(),
  name: line.min(1),
  domain: optionalLine,
  industry: optionalLine,
  tier: optionalLine,
  country: optionalLine,
  timeZone: optionalLine,
  attributes: z.record(z.string(), z.unknown()).default({}),
});

export const LeadInput = z.object({
  email: z.string(),
  firstName: optionalLine,
  lastName: optionalLine,
  title: optionalLine,
  persona: line.min(1),
  /** Where the lead starts (new leads) or is moved to by the CRM; defaults to the first stage. */
  stage: line.min(1).optional(),
  timeZone: optionalLine,
  attributes: z.record(z.string(), z.unknown()).default({}),
  owner: OwnerInput.nullish(),
  account: AccountInput,
});
export type LeadInput = z.infer<typeof LeadInput>;

export const TriggerBody = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('lead.upsert'),
    lead: LeadInput,
    /** Enroll in this sequence now as well (entry by API). */
    sequence: z.string().optional(),
  }),
  z.object({
    type: z.literal('lead.exit'),
    email: z.string(),
    /** Only this sequence; all of the lead's sequences when left out. */
    sequence: z.string().optional(),
  }),
  z.object({
    type: z.literal('event'),
    event: z.string().min(1),
    email: z.string(),
    data: z.record(z.string(), z.unknown()).default({}),
  }),
]);
export type TriggerBody = z.infer<typeof TriggerBody>;

// Deliberately plain: the address must have one @, a dotted domain and no spaces or angle brackets.
const EMAIL = /^[^\s@<>()",;:]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;
export const isEmail = (s: string) => s.length <= 254 && EMAIL.test(s);
