// One zod schema per YAML file; the TypeScript model is inferred from it and the JSON Schema
// (`nurture schema`) is generated from it, so editors and the engine never disagree.
import { z } from 'zod';
import { isDuration, parseDuration } from './duration.js';
import { CLICK_BURST_WINDOW_SECONDS } from '../engagement/clicks.js';
import { GATEWAY_RENDER_WINDOW_SECONDS } from '../engagement/opens.js';

/** A verdict can change for this long after a hit: the widest window in which a scanner's walk is recognised. */
const VERDICT_WINDOW_MS = Math.max(CLICK_BURST_WINDOW_SECONDS, GATEWAY_RENDER_WINDOW_SECONDS) * 1000;

/**
 * Names the engine looks things up by. Object's own property names (constructor, __proto__, toString…)
 * are refused: a name must mean only what the configuration says, never something every object has.
 */
const slug = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]*$/, 'expected a lower-case name of letters, digits, "-" or "_"')
  .refine((name) => !isReservedName(name), { message: 'is a reserved name (a property every JavaScript object has): choose another' });

export function isReservedName(name: string): boolean {
  return Object.hasOwn(Object.prototype, name) || name === '__proto__';
}
const duration = z
  .string()
  .refine(isDuration, { message: 'expected a duration such as 30m, 12h, 3d or 2w' });
const clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a 24-hour time such as 09:30');
export const OUTBOUND_EVENTS = ['lead.advanced', 'account.advanced', 'lead.replied', 'lead.unsubscribed', 'lead.bounced', 'lead.erased'] as const;
export type OutboundEventType = (typeof OUTBOUND_EVENTS)[number];
export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const weekday = z.enum(WEEKDAYS);
const timeZone = z.string().refine(isTimeZone, { message: 'expected an IANA time zone such as Europe/Berlin' });

/** An IANA zone name this runtime knows (Intl is the authority, so no list to keep). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** When a send may go out, in the lead's own time zone. */
export const WindowSchema = z.strictObject({
  days: z.array(weekday).min(1).default(['mon', 'tue', 'wed', 'thu', 'fri']),
  from: clock.default('08:00'),
  to: clock.default('18:00'),
});
export type Window = z.infer<typeof WindowSchema>;

export const CapSchema = z.strictObject({
  max: z.number().int().positive(),
  per: duration,
});
export type Cap = z.infer<typeof CapSchema>;

const comparison = z.strictObject({
  gte: z.number().optional(),
  gt: z.number().optional(),
  lte: z.number().optional(),
  lt: z.number().optional(),
});
export type Comparison = z.infer<typeof comparison>;

/** A filter on lead and account fields (`lead.title`, `account.industry`, `lead.attributes.plan`). */
export type FieldFilter =
  | { field: string; equals?: unknown; in?: unknown[]; exists?: boolean; gte?: number; gt?: number; lte?: number; lt?: number }
  | { all: FieldFilter[] }
  | { any: FieldFilter[] }
  | { not: FieldFilter };

const fieldPath = z
  .string()
  .regex(/^(lead|account)\.[A-Za-z0-9_.]+$/, 'expected a field such as lead.title, account.industry or lead.attributes.plan');

export const FieldFilterSchema: z.ZodType<FieldFilter> = z.lazy(() =>
  z.union([
    z.strictObject({
      field: fieldPath,
      equals: z.unknown().optional(),
      in: z.array(z.unknown()).optional(),
      exists: z.boolean().optional(),
      gte: z.number().optional(),
      gt: z.number().optional(),
      lte: z.number().optional(),
      lt: z.number().optional(),
    }),
    z.strictObject({ all: z.array(FieldFilterSchema).min(1) }),
    z.strictObject({ any: z.array(FieldFilterSchema).min(1) }),
    z.strictObject({ not: FieldFilterSchema }),
  ]),
);

/**
 * A condition on a lead's engagement, used by advancement rules, branches and goals.
 * Only human signals count; machine opens and scanner clicks never satisfy a condition.
 */
export type Condition =
  | { score: Comparison }
  | { valuePieces: Comparison }
  | { replied: boolean }
  | { opened: string }
  | { clicked: string | { tag: string } }
  | { field: FieldFilter }
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition };

export const ConditionSchema: z.ZodType<Condition> = z.lazy(() =>
  z.union([
    z.strictObject({ score: comparison }),
    z.strictObject({ valuePieces: comparison }),
    z.strictObject({ replied: z.boolean() }),
    z.strictObject({ opened: z.string() }),
    z.strictObject({ clicked: z.union([z.string(), z.strictObject({ tag: z.string() })]) }),
    z.strictObject({ field: FieldFilterSchema }),
    z.strictObject({ all: z.array(ConditionSchema).min(1) }),
    z.strictObject({ any: z.array(ConditionSchema).min(1) }),
    z.strictObject({ not: ConditionSchema }),
  ]),
);

const SenderSchema = z.strictObject({
  name: z.string().min(1),
  email: z.email(),
  replyTo: z.email().optional(),
});
export type Sender = z.infer<typeof SenderSchema>;

const domainName = z
  .string()
  .regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$/i, 'expected a domain such as handrail.example');
const isoDate = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/, 'expected a date such as 2026-11-01');
const perWindow = z.number().int().positive();

/** A sending limit: without `domain` it holds for the relay as a whole, with one for mail from that domain. */
const SendingLimitSchema = z
  .strictObject({
    domain: domainName.optional(),
    perSecond: perWindow.optional(),
    perMinute: perWindow.optional(),
    /** Per UTC day. */
    perDay: perWindow.optional(),
  })
  .refine((l) => l.perSecond !== undefined || l.perMinute !== undefined || l.perDay !== undefined, {
    message: 'a limit needs perSecond, perMinute or perDay',
  });
export type SendingLimit = z.infer<typeof SendingLimitSchema>;

/** A new sending domain's daily ceiling, growing from `dailyStart` on `start` until it reaches `max`. */
const WarmupSchema = z
  .strictObject({
    domain: domainName,
    start: isoDate,
    dailyStart: z.number().int().positive(),
    /** Multiply the ceiling by this each day (e.g. 1.5)… */
    dailyGrowth: z.number().min(1).optional(),
    /** …or add this many each day. */
    dailyIncrease: z.number().int().positive().optional(),
    max: z.number().int().positive().optional(),
  })
  .refine((w) => (w.dailyGrowth === undefined) !== (w.dailyIncrease === undefined), {
    message: 'a warm-up grows by dailyGrowth (a factor, e.g. 1.5) or dailyIncrease (sends per day): set exactly one',
  });
export type Warmup = z.infer<typeof WarmupSchema>;

const DkimKeySchema = z.strictObject({
  domain: domainName,
  selector: z.string().regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/i, 'expected a DKIM selector such as s2026'),
  /** Where the PEM private key is: `file:keys/handrail.pem` (relative to the config folder) or `env:DKIM_HANDRAIL_KEY`. */
  privateKey: z.string().regex(/^(file|env):.+$/, 'expected file:path/to/key.pem or env:VARIABLE_NAME'),
});
export type DkimKeyConfig = z.infer<typeof DkimKeySchema>;

/** How mail goes out: rate limits, warm-up, DKIM keys and how SMTP refusals are treated. */
export const SendingSchema = z.strictObject({
  limits: z.array(SendingLimitSchema).default([]),
  warmup: z.union([WarmupSchema, z.array(WarmupSchema)]).optional(),
  dkim: z.array(DkimKeySchema).default([]),
  /** A policy block (5.7.x) or full mailbox (5.2.2) suppresses the address only after this many. */
  suppressAfterSoftBounces: z.number().int().positive().default(3),
  /** A send that keeps meeting 4xx replies or dropped connections is retried for this long, then ends `failed`. */
  maxRetryAge: duration.default('1d'),
  /** The longest wait between two tries of such a send: waits double from 5 s up to this, then stay at it. */
  maxRetryDelay: duration.default('10m'),
});
export type Sending = z.infer<typeof SendingSchema>;

/** How tracking hits are judged; documented in docs/engagement.md. */
export const TrackingSchema = z.strictObject({
  /**
   * A human-looking open or click counts only once nothing that can still arrive could change its verdict:
   * a scanner's walk over the message's links, a gateway's re-check. Longer than the burst window plus the
   * time a hit can take to be recorded under load.
   */
  settleAfter: duration
    .refine((d) => !isDuration(d) || parseDuration(d) > VERDICT_WINDOW_MS, { message: `expected more than ${VERDICT_WINDOW_MS / 1000}s (the longest a scanner's walk can take to be recognised)` })
    .default('2m'),
  /**
   * A pixel fetched sooner than this after the relay's 250 is the receiving side scanning or prefetching, not a
   * person reading: delivery, noticing and opening take longer (docs/engagement.md has the figures).
   */
  openFloor: duration.default('5s'),
  /** A click sooner than this after the relay's 250 is a gateway following links in transit, not a person who opened, read and chose. */
  clickFloor: duration.default('15s'),
});
export type Tracking = z.infer<typeof TrackingSchema>;

/** How inbound mail (replies, out-of-office, bounces, complaints) finds the message it answers; documented in docs/engagement.md. */
export const InboundSchema = z.strictObject({
  /**
   * Send each message with its own envelope sender, `bounce+<signed token>@<bounceDomain>`, so a bounce
   * names its message even when it quotes nothing of it. The visible From and Reply-To are unchanged.
   */
  verp: z.boolean().default(true),
  /** Where those bounces go; route `bounce+*` there to POST /v1/inbound. Default: the sender's own domain (keeps SPF aligned). */
  bounceDomain: domainName.optional(),
  /**
   * Mail that names no message (a client dropped In-Reply-To, a bounce that quotes nothing) is matched by
   * address to the lead's latest message sent within this long.
   */
  matchWindow: duration.default('30d'),
});
export type Inbound = z.infer<typeof InboundSchema>;

export const FunnelSchema = z.strictObject({
  $schema: z.string().optional(),
  /** Ordered: a lead advances from each stage to the next one. */
  stages: z.array(slug).min(2),
  personas: z.record(slug, z.strictObject({ label: z.string(), description: z.string().optional() })),
  defaults: z
    .strictObject({
      timeZone: timeZone.default('UTC'),
      window: WindowSchema.optional(),
    })
    .default({ timeZone: 'UTC' }),
  caps: z
    .strictObject({
      lead: CapSchema.optional(),
      account: CapSchema.optional(),
    })
    .default({}),
  senders: z.record(slug, SenderSchema),
  /** Custom attributes templates may use as lead.attributes.<name> / account.attributes.<name>. */
  attributes: z
    .strictObject({ lead: z.array(z.string()).default([]), account: z.array(z.string()).default([]) })
    .default({ lead: [], account: [] }),
  /** Postal address shown in every segmented email's footer (CAN-SPAM). */
  postalAddress: z.string().optional(),
  scoring: z
    .strictObject({
      weights: z
        .strictObject({
          open: z.number().default(1),
          click: z.number().default(3),
          value_click: z.number().default(5),
          reply: z.number().default(10),
        })
        .default({ open: 1, click: 3, value_click: 5, reply: 10 }),
      // At least a week: B2B attention is measured in weeks, and the decayed score is kept as a sum
      // anchored in 2026, whose exponent a very short half-life would overflow within a few years.
      halfLife: duration.refine((d) => !isDuration(d) || parseDuration(d) >= 7 * 86_400_000, { message: 'expected a half-life of at least 7d' }).optional(),
    })
    .default({ weights: { open: 1, click: 3, value_click: 5, reply: 10 } }),
  /** Rate limits, warm-up, DKIM and SMTP refusal policy; everything in it has a default. */
  sending: SendingSchema.optional(),
  /** How opens and clicks are judged (person or machine) and when a verdict is final; everything has a default. */
  tracking: TrackingSchema.default(TrackingSchema.parse({})),
  /** Value-first thresholds: the rule a lead in this stage must meet to move to the next stage. */
  advancement: z.record(slug, z.strictObject({ when: ConditionSchema })).default({}),
  /** Buying-committee coverage: an account reaches a stage when enough of its people are engaged. */
  accounts: z
    .strictObject({
      /** When a lead counts as engaged (checked on its engagement in its current stage). */
      engagedWhen: ConditionSchema.default({ any: [{ replied: true }, { valuePieces: { gte: 1 } }] }),
      stages: z
        .record(
          slug,
          z.strictObject({
            engagedLeads: z.number().int().positive(),
            personas: z.number().int().positive().default(1),
            /** Leads of the account in an earlier stage move up with it. */
            moveLeads: z.boolean().default(false),
          }),
        )
        .default({}),
    })
    .default({ engagedWhen: { any: [{ replied: true }, { valuePieces: { gte: 1 } }] }, stages: {} }),
  /** Envelope sender (VERP) and how inbound mail is matched when it names no message; everything has a default. */
  inbound: InboundSchema.default(InboundSchema.parse({})),
  /** The user's CRM hears about these, signed the Standard Webhooks way. */
  webhooks: z
    .array(
      z.strictObject({
        url: z.url(),
        events: z.array(z.enum(OUTBOUND_EVENTS)).min(1).default([...OUTBOUND_EVENTS]),
      }),
    )
    .default([]),
});
export type Funnel = z.infer<typeof FunnelSchema>;

const EmailStepSchema = z.strictObject({
  id: slug,
  type: z.literal('email'),
  template: z.string().min(1),
  /** Overrides the template's own subject. */
  subject: z.string().optional(),
  kind: z.enum(['value', 'pitch']).default('value'),
  /** Sender key from funnel.yaml, or `owner` for the lead's rep. Defaults by sequence mode. */
  sender: z.string().optional(),
  /** One-to-one follow-ups reply in the same thread unless a step starts a new one. */
  thread: z.enum(['continue', 'new']).default('continue'),
  /** Value-first gate: a pitch waits until the lead has engaged with this many value pieces. */
  gate: z
    .strictObject({
      valuePieces: z.number().int().positive(),
      timeout: duration.default('14d'),
      onTimeout: z.enum(['skip', 'send']).default('skip'),
    })
    .optional(),
});

const WaitStepSchema = z.strictObject({
  id: slug,
  type: z.literal('wait'),
  for: duration.optional(),
  businessDays: z.number().int().positive().optional(),
  /** Wait until the next time inside this window, in the lead's time zone. */
  until: WindowSchema.optional(),
});

const BranchStepSchema = z.strictObject({
  id: slug,
  type: z.literal('branch'),
  when: ConditionSchema,
  then: slug,
  /** Defaults to the next step. */
  else: slug.optional(),
});

const GoalStepSchema = z.strictObject({
  id: slug,
  type: z.literal('goal'),
  /** Met: the enrollment exits as converted. Not met: it goes on to the next step. */
  when: ConditionSchema,
});

export const StepSchema = z.discriminatedUnion('type', [EmailStepSchema, WaitStepSchema, BranchStepSchema, GoalStepSchema]);
export type Step = z.infer<typeof StepSchema>;
export type EmailStep = z.infer<typeof EmailStepSchema>;
export type WaitStep = z.infer<typeof WaitStepSchema>;
export type BranchStep = z.infer<typeof BranchStepSchema>;
export type GoalStep = z.infer<typeof GoalStepSchema>;
export const STEP_TYPES = ['email', 'wait', 'branch', 'goal'] as const;

export const EXIT_REASONS = ['replied', 'unsubscribed', 'bounced', 'advanced', 'manual', 'converted', 'completed', 'preference'] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

export const SequenceSchema = z.strictObject({
  $schema: z.string().optional(),
  id: slug.optional(),
  name: z.string().min(1),
  description: z.string().optional(),
  mode: z.enum(['one_to_one', 'segmented']),
  stage: slug,
  personas: z.array(slug).min(1).optional(),
  audience: FieldFilterSchema.optional(),
  entry: z
    .strictObject({
      on: z.enum(['stage_entry', 'event', 'manual']).default('stage_entry'),
      event: slug.optional(),
      reentry: z
        .union([z.enum(['once', 'once_per_stage_entry']), z.strictObject({ after: duration })])
        .default('once_per_stage_entry'),
    })
    .default({ on: 'stage_entry', reentry: 'once_per_stage_entry' }),
  /** Higher runs first; sequences sharing an `exclusive` group never run at once for one lead. */
  priority: z.number().int().default(0),
  exclusive: slug.optional(),
  sender: z.string().optional(),
  window: WindowSchema.optional(),
  tracking: z
    .strictObject({ opens: z.boolean().default(true), clicks: z.boolean().default(true) })
    .default({ opens: true, clicks: true }),
  exitOn: z
    .array(z.enum(['replied', 'unsubscribed', 'bounced', 'advanced']))
    .default(['replied', 'unsubscribed', 'bounced', 'advanced']),
  steps: z.array(StepSchema).min(1),
});
export type SequenceInput = z.infer<typeof SequenceSchema>;

/** A loaded sequence: its id is fixed and its version is the hash of its content. */
export type Sequence = Omit<SequenceInput, 'id' | '$schema'> & { id: string; version: string; file: string };
