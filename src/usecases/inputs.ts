// The shapes the outside world sends us (webhooks, CLI): one zod schema each, shared by every entry point.
import { z } from 'zod';

/**
 * Text Postgres can store and every client can read: no NUL (Postgres refuses it in text and jsonb) and
 * no unpaired UTF-16 surrogate (a JSON "\ud800" escape has no UTF-8 form; jsonb refuses it).
 */
export function textProblem(s: string): string | null {
  if (s.includes('\u0000')) return 'must not contain a NUL character (\\u0000)';
  if (/\p{Cs}/u.test(s)) return 'must be valid Unicode: it contains an unpaired surrogate (a lone \\ud800–\\udfff escape)';
  return null;
}

const text = z.string().superRefine((s, ctx) => {
  const problem = textProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

// A value that may reach a header (a name in From/To, a subject token) must be one line.
const line = text.max(500).regex(/^[^\r\n]*$/, 'must be a single line (no CR or LF)');
const optionalLine = line.nullish();
const email = text.max(320);

/** How deep and how large the free-form attributes of a lead or account, or an event's data, may be. */
export const JSON_LIMITS = { depth: 10, bytes: 64 * 1024 } as const;

/**
 * Free-form JSON (attributes, event data): an object, at most JSON_LIMITS.depth levels deep and
 * JSON_LIMITS.bytes as JSON, with text Postgres can store. Walked without recursion, so a value nested
 * a million deep is refused at the first level too many, and the issue names where.
 */
const jsonObject = z.custom<Record<string, unknown>>().superRefine((value, ctx) => {
  const problem = (path: PropertyKey[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return problem([], 'expected an object of names and values');
  let bytes = 0;
  const stack: { v: unknown; path: PropertyKey[] }[] = [{ v: value, path: [] }];
  while (stack.length) {
    const { v, path } = stack.pop()!;
    if (typeof v === 'string') {
      const p = textProblem(v);
      if (p) return problem(path, p);
      bytes += v.length + 2;
    } else if (typeof v === 'number' || typeof v === 'boolean' || v === null) {
      bytes += 8;
    } else if (typeof v === 'object') {
      if (path.length >= JSON_LIMITS.depth) return problem(path, `nested more than ${JSON_LIMITS.depth} levels deep; keep attributes flat (at most ${JSON_LIMITS.depth} levels)`);
      for (const [k, child] of Object.entries(v as object)) {
        const p = textProblem(k) ?? (k === '__proto__' ? 'is a reserved name' : null);
        if (p) return problem(path, `name "${k.replace(/[\u0000-\u001f]/g, '?')}" ${p}`);
        bytes += k.length + 4;
        stack.push({ v: child, path: [...path, k] });
      }
      bytes += 2;
    } else {
      return problem(path, `expected JSON values only, got ${typeof v}`);
    }
    if (bytes > JSON_LIMITS.bytes) return problem([], `larger than ${JSON_LIMITS.bytes / 1024} KiB as JSON; keep attributes to what templates and filters use`);
  }
});
const attributes = jsonObject.default({});

export const OwnerInput = z.object({
  name: line.min(1),
  email,
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
  attributes,
});

export const LeadInput = z.object({
  email,
  firstName: optionalLine,
  lastName: optionalLine,
  title: optionalLine,
  persona: line.min(1),
  /** Where the lead starts (new leads) or is moved to by the CRM; defaults to the first stage. */
  stage: line.min(1).optional(),
  timeZone: optionalLine,
  attributes,
  owner: OwnerInput.nullish(),
  account: AccountInput,
});
export type LeadInput = z.infer<typeof LeadInput>;

export const TriggerBody = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('lead.upsert'),
    lead: LeadInput,
    /** Enroll in this sequence now as well (entry by API). */
    sequence: line.optional(),
  }),
  z.object({
    type: z.literal('lead.exit'),
    email,
    /** Only this sequence; all of the lead's sequences when left out. */
    sequence: line.optional(),
  }),
  z.object({
    type: z.literal('event'),
    event: line.min(1),
    email,
    data: attributes,
  }),
]);
export type TriggerBody = z.infer<typeof TriggerBody>;

// Deliberately plain: the address must have one @, a dotted domain and no spaces or angle brackets.
const EMAIL = /^[^\s@<>()",;:]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;
// Control characters and unpaired surrogates are no part of any address (and Postgres refuses NUL).
export const isEmail = (s: string) => s.length <= 254 && !/[\u0000-\u001f\u007f]|\p{Cs}/u.test(s) && EMAIL.test(s);
