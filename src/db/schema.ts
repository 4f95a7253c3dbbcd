// Postgres is the source of truth. Redis only holds work in flight; everything here can rebuild it.
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  customType,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export type Owner = { name: string; email: string; title?: string | null; phone?: string | null; signature?: string | null };

export const accounts = pgTable('accounts', {
  id: uuid('id').primaryKey().defaultRandom(),
  /** The CRM's account id, or the company domain: what triggers upsert on. */
  key: text('key').notNull().unique(),
  name: text('name').notNull(),
  domain: text('domain'),
  industry: text('industry'),
  tier: text('tier'),
  country: text('country'),
  timeZone: text('time_zone'),
  attributes: jsonb('attributes').$type<Record<string, unknown>>().notNull().default({}),
  stage: text('stage'),
  stageEnteredAt: ts('stage_entered_at'),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

export const leads = pgTable(
  'leads',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    accountId: uuid('account_id').notNull().references(() => accounts.id),
    /** Stored lower-cased: one person, one row. */
    email: text('email').notNull().unique(),
    firstName: text('first_name'),
    lastName: text('last_name'),
    title: text('title'),
    persona: text('persona').notNull(),
    stage: text('stage').notNull(),
    stageEnteredAt: ts('stage_entered_at').notNull().defaultNow(),
    owner: jsonb('owner').$type<Owner | null>(),
    timeZone: text('time_zone'),
    attributes: jsonb('attributes').$type<Record<string, unknown>>().notNull().default({}),
    /** active | unsubscribed | bounced | complained */
    status: text('status').notNull().default('active'),
    /**
     * Engagement since entering the stage, kept incrementally. scoreBase is the decayed score
     * expressed at a fixed reference time, so adding signals in any order gives the same score.
     */
    scoreBase: doublePrecision('score_base').notNull().default(0),
    valuePieces: jsonb('value_pieces').$type<string[]>().notNull().default([]),
    repliedAt: ts('replied_at'),
    /** When the lead first met the funnel's `accounts.engagedWhen`: what buying-committee coverage counts. */
    engagedAt: ts('engaged_at'),
    /**
     * What the person chose on the preference page: all | rep_only (one-to-one mail from their rep, no
     * segmented sequences). The engine reads it (audience, decide); only the person or an operator changes it.
     */
    mailPreference: text('mail_preference').notNull().default('all'),
    /** The person paused all mail until then (preference page); steps due before it wait. */
    pausedUntil: ts('paused_until'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [index('leads_account_idx').on(t.accountId), index('leads_stage_persona_idx').on(t.stage, t.persona, t.id)],
);

export const sequenceVersions = pgTable(
  'sequence_versions',
  {
    sequenceId: text('sequence_id').notNull(),
    version: text('version').notNull(),
    definition: jsonb('definition').notNull(),
    loadedAt: ts('loaded_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.sequenceId, t.version] })],
);

export const enrollments = pgTable(
  'enrollments',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    leadId: uuid('lead_id').notNull().references(() => leads.id),
    sequenceId: text('sequence_id').notNull(),
    sequenceVersion: text('sequence_version').notNull(),
    /** active (a step is due at nextDueAt) | completed | exited */
    state: text('state').notNull().default('active'),
    /** The step to run next; null once the sequence has run out of steps. */
    cursor: text('cursor'),
    nextDueAt: ts('next_due_at'),
    /** Bumped on every transition: part of the job id, so a stale job can never run a step twice. */
    revision: integer('revision').notNull().default(0),
    /** Engine-owned state (steps sent, when a gate began waiting, …). */
    progress: jsonb('progress').$type<Record<string, unknown>>().notNull().default({}),
    exitReason: text('exit_reason'),
    enteredAt: ts('entered_at').notNull().defaultNow(),
    stageEnteredAt: ts('stage_entered_at').notNull(),
    endedAt: ts('ended_at'),
  },
  (t) => [
    // One live enrollment per lead and sequence: concurrent triggers can't create two.
    uniqueIndex('enrollments_live_uq').on(t.leadId, t.sequenceId).where(sql`state = 'active'`),
    index('enrollments_due_idx').on(t.nextDueAt).where(sql`state = 'active'`),
  ],
);

export const messages = pgTable(
  'messages',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    enrollmentId: uuid('enrollment_id').notNull().references(() => enrollments.id),
    leadId: uuid('lead_id').notNull().references(() => leads.id),
    sequenceId: text('sequence_id').notNull(),
    stepId: text('step_id').notNull(),
    /** queued → sending → sent | bounced | failed; sending too long → uncertain; held when it can't be rendered. */
    status: text('status').notNull().default('queued'),
    /** RFC 5322 Message-ID without angle brackets, fixed when the row is claimed so a retry reuses it. */
    messageId: text('message_id').notNull().unique(),
    inReplyTo: text('in_reply_to'),
    references: jsonb('references').$type<string[]>().notNull().default([]),
    templateName: text('template_name').notNull(),
    templateVersion: text('template_version'),
    fromAddress: text('from_address'),
    toAddress: text('to_address').notNull(),
    subject: text('subject'),
    kind: text('kind').notNull().default('value'),
    links: jsonb('links').$type<{ id: string; url: string; tag: string | null }[]>().notNull().default([]),
    relayResponse: text('relay_response'),
    error: text('error'),
    attempts: integer('attempts').notNull().default(0),
    queuedAt: ts('queued_at').notNull().defaultNow(),
    sendingAt: ts('sending_at'),
    sentAt: ts('sent_at'),
    /** The email service provider's own id for this message (SendGrid sg_message_id, Postmark MessageID, …): its events name it. */
    providerMessageId: text('provider_message_id'),
  },
  (t) => [
    uniqueIndex('messages_enrollment_step_uq').on(t.enrollmentId, t.stepId),
    index('messages_lead_idx').on(t.leadId, t.sentAt),
    index('messages_provider_id_idx').on(t.providerMessageId).where(sql`provider_message_id is not null`),
  ],
);

export const signals = pgTable(
  'signals',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** Idempotency: the same pixel hit, click, reply or provider event is recorded once. */
    sourceId: text('source_id').notNull().unique(),
    leadId: uuid('lead_id').references(() => leads.id),
    messageId: uuid('message_id').references(() => messages.id),
    sequenceId: text('sequence_id'),
    stepId: text('step_id'),
    /** open | click | reply | auto_reply | bounce | complaint | unsubscribe */
    kind: text('kind').notNull(),
    human: boolean('human').notNull(),
    reason: text('reason').notNull(),
    linkId: text('link_id'),
    tag: text('tag'),
    occurredAt: ts('occurred_at').notNull(),
    evidence: jsonb('evidence').$type<Record<string, unknown>>().notNull().default({}),
    /**
     * When the verdict became final and the signal began to count. A human-looking open or click stays
     * provisional (null) until nothing that can still arrive could change it; only settled signals feed
     * scores, value pieces, gates, branches and advancement.
     */
    settledAt: ts('settled_at'),
    /** When a provisional signal may settle: its arrival plus tracking.settleAfter. */
    settlesAt: ts('settles_at'),
  },
  (t) => [
    index('signals_lead_idx').on(t.leadId, t.occurredAt),
    index('signals_message_idx').on(t.messageId),
    index('signals_provisional_idx').on(t.settlesAt).where(sql`settled_at is null`),
  ],
);

export const advances = pgTable('advances', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  leadId: uuid('lead_id').references(() => leads.id),
  accountId: uuid('account_id').references(() => accounts.id),
  fromStage: text('from_stage'),
  toStage: text('to_stage').notNull(),
  rule: text('rule').notNull(),
  evidence: jsonb('evidence').$type<Record<string, unknown>>().notNull().default({}),
  at: ts('at').notNull().defaultNow(),
});

export const suppressions = pgTable('suppressions', {
  email: text('email').primaryKey(),
  reason: text('reason').notNull(),
  source: text('source').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
});

/**
 * A segmented send to a sequence's whole audience, acknowledged to whoever asked (API or CLI) only once
 * this row exists. It pages through the audience by lead id; `afterLeadId` is the last key done (the
 * checkpoint), written in the same transaction as that page's enrollments, so a crash or a Redis loss
 * resumes from it (reconcile re-enqueues every running fan-out) and no page is enrolled twice.
 */
export const fanouts = pgTable(
  'fanouts',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    sequenceId: text('sequence_id').notNull(),
    /** The sequence's version when it started, and the audience it was started for. */
    sequenceVersion: text('sequence_version').notNull(),
    audience: jsonb('audience').$type<{ stage: string; personas: string[] | null }>().notNull(),
    /** running | done | failed (its sequence is gone from the configuration) */
    status: text('status').notNull().default('running'),
    /** The checkpoint: the last lead id whose page is done; null before the first page. */
    afterLeadId: uuid('after_lead_id'),
    /** Leads in the audience when it started: what progress is measured against. */
    total: integer('total').notNull().default(0),
    scanned: integer('scanned').notNull().default(0),
    enrolled: integer('enrolled').notNull().default(0),
    pages: integer('pages').notNull().default(0),
    /** api | cli */
    source: text('source').notNull(),
    error: text('error'),
    startedAt: ts('started_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    finishedAt: ts('finished_at'),
  },
  (t) => [index('fanouts_running_idx').on(t.startedAt).where(sql`status = 'running'`)],
);

/** Standard Webhooks ids already accepted: a redelivery returns the first answer and changes nothing. */
export const webhookReceipts = pgTable('webhook_receipts', {
  id: text('id').primaryKey(),
  receivedAt: ts('received_at').notNull().defaultNow(),
  response: jsonb('response').notNull(),
});

/** The delivery and engagement log `nurture logs` follows: one row per thing that happened. */
export const activity = pgTable(
  'activity',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: ts('at').notNull().defaultNow(),
    leadId: uuid('lead_id'),
    accountId: uuid('account_id'),
    email: text('email'),
    accountName: text('account_name'),
    sequenceId: text('sequence_id'),
    stepId: text('step_id'),
    kind: text('kind').notNull(),
    detail: text('detail').notNull(),
    data: jsonb('data').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [index('activity_lead_idx').on(t.leadId, t.id)],
);

/**
 * Events for the user's CRM, written in the same transaction as what they report (an outbox), then
 * delivered by the outbound queue with retries; reconcile re-enqueues any that Redis lost.
 */
export const outboundEvents = pgTable(
  'outbound_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    type: text('type').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    deliveredAt: ts('delivered_at'),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
  },
  (t) => [index('outbound_events_pending_idx').on(t.createdAt).where(sql`delivered_at is null`)],
);

/**
 * What was done to people's data and by whom (erasure, imports), kept without personal data: an erased
 * person's entry says what was removed, never who it was.
 */
export const auditLog = pgTable('audit_log', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  at: ts('at').notNull().defaultNow(),
  action: text('action').notNull(),
  actor: text('actor').notNull(),
  detail: jsonb('detail').$type<Record<string, unknown>>().notNull().default({}),
});

const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' });

/**
 * One row per rep's mailbox that nurture reads: where its watcher got to in the inbox (UIDVALIDITY and the
 * last UID recorded, so a restart or reconnect neither misses nor double-counts a message) and how it is
 * doing (what `nurture logs` and the console's queues page show).
 */
export const mailboxWatch = pgTable('mailbox_watch', {
  /** The owner's address, lower case. */
  address: text('address').primaryKey(),
  folder: text('folder').notNull(),
  uidValidity: bigint('uid_validity', { mode: 'bigint' }),
  lastUid: bigint('last_uid', { mode: 'number' }).notNull().default(0),
  /** connecting | watching | retrying | stopped */
  state: text('state').notNull().default('connecting'),
  /** The process holding the watcher's lock. */
  holder: text('holder'),
  connectedAt: ts('connected_at'),
  lastError: text('last_error'),
  lastErrorAt: ts('last_error_at'),
  failures: integer('failures').notNull().default(0),
  nextRetryAt: ts('next_retry_at'),
  /** The error last written to the activity log, and when: the same error again is logged at most hourly. */
  loggedError: text('logged_error'),
  loggedErrorAt: ts('logged_error_at'),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/**
 * The copy of a message sent through a rep's mailbox, as it went out (same bytes, same Message-ID), until
 * it is filed in their Sent folder over IMAP. The bytes are dropped once filed; reconcile re-queues the rest.
 */
export const mailboxCopies = pgTable(
  'mailbox_copies',
  {
    messageId: uuid('message_id')
      .primaryKey()
      .references(() => messages.id, { onDelete: 'cascade' }),
    mailbox: text('mailbox').notNull(),
    raw: bytea('raw'),
    createdAt: ts('created_at').notNull().defaultNow(),
    appendedAt: ts('appended_at'),
    folder: text('folder'),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
  },
  (t) => [index('mailbox_copies_pending_idx').on(t.createdAt).where(sql`appended_at is null`)],
);
