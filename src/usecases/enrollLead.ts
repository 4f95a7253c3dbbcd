// The one way a lead gets into sequences: a CRM upsert, a named event, the CLI or a stage change.
import { createHmac } from 'node:crypto';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Context } from '../context.js';
import { logActivity } from '../db/activity.js';
import type { Tx } from '../db/client.js';
import type { AccountRow, LeadRow } from '../db/facts.js';
import { accounts, enrollments, leads, messages, suppressions } from '../db/schema.js';
import type { Trigger } from '../engine/audience.js';
import { suggest } from '../config/issues.js';
import { isTimeZone } from '../config/schema.js';
import { UseCaseError } from './errors.js';
import { enqueueFollowups, noFollowups, type Followups } from './applyDecision.js';
import { isEmail, type LeadInput } from './inputs.js';
import { moveStage } from './advanceLead.js';
import { enroll } from './enroll.js';
import { notifyEnrollments } from './notifyEnrollments.js';
import { lockLeadWithAccount } from './engineInput.js';
import { replanDeferred } from './replanDeferred.js';

export interface EnrollResult {
  leadId: string;
  accountId: string;
  created: boolean;
  stage: string;
  enrolled: { enrollmentId: string; sequence: string }[];
  refused: { sequence: string; reason: string }[];
}

export interface UpsertOptions {
  sequence?: string;
  /** false: record the lead (and a stage the CRM set) but enroll it in nothing (`nurture import --no-enroll`). */
  enroll?: boolean;
  /** true: a lead and account whose fields already say this are left untouched, not even logged (imports). */
  skipUnchanged?: boolean;
}

export async function upsertLead(ctx: Context, input: LeadInput, opts: UpsertOptions = {}): Promise<EnrollResult> {
  const email = checkLead(ctx, input, opts);
  const out = noFollowups();
  const result = await ctx.db.transaction((tx) => upsertLeadInTx(ctx, tx, email, input, opts, out));
  await enqueueFollowups(ctx, out);
  // A zone the CRM just set or changed moves a step waiting for its window to that zone's window.
  if (!result.created && !result.unchanged) await replanDeferred(ctx, { leadId: result.leadId });
  return result;
}

/**
 * The rules a lead must meet before anything is written: its address, persona, stage, zones and the
 * sequence asked for. Returns the address as stored (lower-cased). Imports check each row with it too.
 */
export function checkLead(ctx: Pick<Context, 'config'>, input: LeadInput, opts: Pick<UpsertOptions, 'sequence'> = {}): string {
  const { funnel, sequences } = ctx.config;
  const email = input.email.trim().toLowerCase();
  if (!isEmail(email)) throw new UseCaseError('invalid_email', `"${input.email}" is not an email address`, 'lead.email');
  if (input.owner && !isEmail(input.owner.email.trim())) throw new UseCaseError('invalid_email', `"${input.owner.email}" is not an email address`, 'lead.owner.email');
  // Only the configured names: a lookup by `in` or by index would find __proto__, constructor and toString.
  if (!Object.hasOwn(funnel.personas, input.persona)) {
    throw new UseCaseError('unknown_persona', `unknown persona "${input.persona}"${suggest(input.persona, Object.keys(funnel.personas))}; personas are ${Object.keys(funnel.personas).join(', ')}`, 'lead.persona');
  }
  if (input.stage && !funnel.stages.includes(input.stage)) {
    throw new UseCaseError('unknown_stage', `unknown stage "${input.stage}"${suggest(input.stage, funnel.stages)}; stages are ${funnel.stages.join(', ')}`, 'lead.stage');
  }
  for (const [field, tz] of [['lead.timeZone', input.timeZone], ['lead.account.timeZone', input.account.timeZone]] as const) {
    if (tz && !isTimeZone(tz)) throw new UseCaseError('invalid_field', `"${tz}" is not an IANA time zone such as Europe/Berlin`, field);
  }
  if (opts.sequence && !sequences.has(opts.sequence)) {
    throw new UseCaseError('unknown_sequence', `unknown sequence "${opts.sequence}"${suggest(opts.sequence, sequences.keys())}`, 'sequence');
  }
  return email;
}

/** What a suppression's reason makes of a lead that arrives for a suppressed address. */
const SUPPRESSED_STATUS: Record<string, string> = { unsubscribe: 'unsubscribed', complaint: 'complained', hard_bounce: 'bounced' };

/**
 * Upserts one checked lead (see checkLead) in the caller's transaction; its follow-ups go to `out`. An
 * import runs a batch of these in one transaction; a webhook runs one.
 */
export async function upsertLeadInTx(ctx: Context, tx: Tx, email: string, input: LeadInput, opts: UpsertOptions, out: Followups): Promise<EnrollResult & { unchanged?: boolean; suppressed?: boolean }> {
  const { funnel } = ctx.config;
  const now = ctx.now();
  // An erased person is never stored again; any other suppressed address is kept, but never enrolled.
  const suppressed = await tx.select({ reason: suppressions.reason }).from(suppressions).where(inArray(suppressions.email, [email, erasedKey(ctx.settings, email)]));
  if (suppressed.some((s) => s.reason === 'erased')) throw new UseCaseError('erased', `${email} was erased at the person's request: nurture keeps nothing about them and never mails them again`, 'lead.email');
  const a = input.account;
  const key = (a.key ?? a.domain ?? email.split('@')[1]!).toLowerCase();
  const accountFields = { name: a.name, domain: a.domain ?? null, industry: a.industry ?? null, tier: a.tier ?? null, country: a.country ?? null, timeZone: a.timeZone ?? null, attributes: a.attributes };
  let account: AccountRow | undefined;
  if (opts.skipUnchanged) {
    const [known] = await tx.select().from(accounts).where(eq(accounts.key, key));
    if (known && sameFields(known, accountFields)) account = known;
  }
  account ??= (
    await tx
      .insert(accounts)
      .values({ key, ...accountFields })
      .onConflictDoUpdate({ target: accounts.key, set: { ...accountFields, attributes: sql`${accounts.attributes} || excluded.attributes`, updatedAt: now } })
      .returning()
  )[0]!;

  const leadFields = {
    accountId: account.id,
    firstName: input.firstName ?? null,
    lastName: input.lastName ?? null,
    title: input.title ?? null,
    persona: input.persona,
    timeZone: input.timeZone ?? null,
    owner: input.owner ? { ...input.owner, email: input.owner.email.trim() } : null,
  };
  const status = suppressed[0] ? (SUPPRESSED_STATUS[suppressed[0].reason] ?? 'unsubscribed') : 'active';
  const inserted = await tx
    .insert(leads)
    .values({ email, ...leadFields, attributes: input.attributes, stage: input.stage ?? funnel.stages[0]!, stageEnteredAt: now, status })
    .onConflictDoNothing({ target: leads.email })
    .returning();
  let lead: LeadRow;
  let triggers: Trigger[] = [];
  let created = false;
  if (inserted[0]) {
    lead = inserted[0];
    created = true;
    triggers.push({ on: 'stage_entry' });
  } else {
    // Lock the lead: concurrent triggers for one person are serialised here.
    const [current] = await tx.select().from(leads).where(eq(leads.email, email)).for('no key update');
    const movedTo = input.stage && input.stage !== current!.stage ? input.stage : null;
    if (opts.skipUnchanged && !movedTo && !opts.sequence && sameFields(current!, { ...leadFields, attributes: input.attributes })) {
      return { leadId: current!.id, accountId: account.id, created: false, unchanged: true, stage: current!.stage, enrolled: [], refused: [] };
    }
    [lead] = (await tx
      .update(leads)
      .set({ ...leadFields, attributes: sql`${leads.attributes} || ${JSON.stringify(input.attributes)}::jsonb`, updatedAt: now })
      .where(eq(leads.id, current!.id))
      .returning()) as [LeadRow];
    // The CRM may have just filled the field a held message was missing: try those again.
    await releaseHeld(ctx, tx, lead, out);
    if (movedTo) {
      lead = await moveStage(ctx, tx, lead, account, movedTo, 'crm', { because: ['stage set by trigger'] }, out, { enroll: opts.enroll !== false });
      triggers = [];
    }
  }
  await logActivity(tx, [{ leadId: lead.id, accountId: account.id, email, accountName: account.name, kind: created ? 'lead_created' : 'lead_updated', detail: `${created ? 'new lead' : 'lead updated'} (${lead.persona}, ${lead.stage})${lead.status !== 'active' ? `, ${lead.status}: the address is suppressed` : ''}` }]);
  if (opts.sequence) triggers.push({ on: 'manual', sequenceId: opts.sequence });
  if (opts.enroll === false) triggers = [];
  const enrolled: EnrollResult['enrolled'] = [];
  const refused: EnrollResult['refused'] = [];
  for (const t of triggers) {
    const r = await enroll(ctx, tx, lead, account, t, out);
    enrolled.push(...r.enrolled);
    refused.push(...r.refused);
  }
  return { leadId: lead.id, accountId: account.id, created, stage: lead.stage, enrolled, refused, ...(lead.status !== 'active' ? { suppressed: true } : {}) };
}

/**
 * What the suppression list keeps of an erased person: a keyed hash of the address (HMAC with the
 * tracking secret as the salt), enough to recognise the address if it comes back, nothing to recover it.
 */
export function erasedKey(settings: Pick<Context['settings'], 'trackingSecret'>, email: string): string {
  return `erased:${createHmac('sha256', settings.trackingSecret).update(`erased.${email.trim().toLowerCase()}`).digest('hex')}`;
}

/** Whether a row already holds these values (attributes merge: every given key already has that value). */
function sameFields(row: Record<string, unknown>, fields: Record<string, unknown>): boolean {
  for (const [k, v] of Object.entries(fields)) {
    if (k === 'attributes') {
      const have = (row.attributes ?? {}) as Record<string, unknown>;
      if (!Object.entries(v as Record<string, unknown>).every(([ak, av]) => canonical(have[ak]) === canonical(av))) return false;
    } else if (canonical(row[k] ?? null) !== canonical(v ?? null)) return false;
  }
  return true;
}

function canonical(v: unknown): string {
  if (v === undefined) return 'undefined';
  return JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).filter(([, y]) => y !== undefined && y !== null).sort(([p], [q]) => p.localeCompare(q))) : x));
}

export async function recordEvent(ctx: Context, name: string, emailInput: string, data: Record<string, unknown> = {}): Promise<EnrollResult> {
  const email = emailInput.trim().toLowerCase();
  if (!isEmail(email)) throw new UseCaseError('invalid_email', `"${emailInput}" is not an email address`, 'email');
  const listening = [...ctx.config.sequences.values()].filter((s) => s.entry.on === 'event' && s.entry.event === name);
  if (!listening.length) throw new UseCaseError('unknown_event', `no sequence starts on event "${name}"`, 'event');
  const out = noFollowups();
  const result = await ctx.db.transaction(async (tx) => {
    const [lead] = await tx.select().from(leads).where(eq(leads.email, email)).for('no key update');
    if (!lead) throw new UseCaseError('unknown_lead', `no lead with email ${email}: upsert the lead first (type lead.upsert)`, 'email');
    const [account] = await tx.select().from(accounts).where(eq(accounts.id, lead.accountId));
    await logActivity(tx, [{ leadId: lead.id, accountId: account!.id, email, accountName: account!.name, kind: 'event', detail: `event ${name}`, data }]);
    const r = await enroll(ctx, tx, lead, account!, { on: 'event', event: name }, out);
    return { leadId: lead.id, accountId: account!.id, created: false, stage: lead.stage, ...r };
  });
  await enqueueFollowups(ctx, out);
  return result;
}

/** Enrolls an existing lead in one named sequence (entry by API or CLI). */
export async function enrollExisting(ctx: Context, sequenceId: string, emailInput: string): Promise<Pick<EnrollResult, 'enrolled' | 'refused'>> {
  if (!ctx.config.sequences.has(sequenceId)) throw new UseCaseError('unknown_sequence', `unknown sequence "${sequenceId}"${suggest(sequenceId, ctx.config.sequences.keys())}`, 'sequence');
  const email = emailInput.trim().toLowerCase();
  if (!isEmail(email)) throw new UseCaseError('invalid_email', `"${emailInput}" is not an email address`, 'email');
  const out = noFollowups();
  const result = await ctx.db.transaction(async (tx) => {
    const [ref] = await tx.select({ accountId: leads.accountId }).from(leads).where(eq(leads.email, email));
    if (!ref) throw new UseCaseError('unknown_lead', `no lead with email ${email}`, 'email');
    const [account] = await tx.select().from(accounts).where(eq(accounts.id, ref.accountId)).for('no key update');
    const [lead] = await tx.select().from(leads).where(eq(leads.email, email)).for('no key update');
    return enroll(ctx, tx, lead!, account!, { on: 'manual', sequenceId }, out);
  });
  await enqueueFollowups(ctx, out);
  return result;
}

/**
 * Held messages of a lead go back to the send queue, and their enrollments wake: a wait that had
 * started restarts, so the next step keeps its distance from the message actually sent.
 */
async function releaseHeld(ctx: Context, tx: Tx, lead: LeadRow, out: Followups): Promise<void> {
  const held = await tx.update(messages).set({ status: 'queued', error: null }).where(and(eq(messages.leadId, lead.id), eq(messages.status, 'held'))).returning({ id: messages.id, enrollmentId: messages.enrollmentId });
  for (const m of held) {
    out.resends.push({ messageId: m.id });
    const [woken] = await tx
      .update(enrollments)
      .set({ nextDueAt: ctx.now(), revision: sql`${enrollments.revision} + 1`, progress: sql`(${enrollments.progress} - 'heldBy') - 'waiting'` })
      .where(and(eq(enrollments.id, m.enrollmentId), eq(enrollments.state, 'active')))
      .returning({ id: enrollments.id, revision: enrollments.revision });
    if (woken) out.steps.push({ job: { enrollmentId: woken.id, revision: woken.revision }, at: ctx.now() });
  }
  if (held.length) await logActivity(tx, [{ leadId: lead.id, email: lead.email, kind: 'released', detail: `${held.length} held message(s) released after the lead was updated` }]);
}

/** Takes a lead out of one sequence, or all of them, by hand (API or CLI). */
export async function exitLead(ctx: Context, emailInput: string, sequenceId?: string): Promise<{ exited: number }> {
  if (sequenceId && !ctx.config.sequences.has(sequenceId)) throw new UseCaseError('unknown_sequence', `unknown sequence "${sequenceId}"${suggest(sequenceId, ctx.config.sequences.keys())}`, 'sequence');
  const email = emailInput.trim().toLowerCase();
  if (!isEmail(email)) throw new UseCaseError('invalid_email', `"${emailInput}" is not an email address`, 'email');
  const out = noFollowups();
  const exited = await ctx.db.transaction(async (tx) => {
    const [ref] = await tx.select({ id: leads.id }).from(leads).where(eq(leads.email, email));
    if (!ref) throw new UseCaseError('unknown_lead', `no lead with email ${email}`, 'email');
    const la = await lockLeadWithAccount(tx, ref.id);
    return notifyEnrollments(ctx, tx, la!.lead, la!.account, { type: 'exit', reason: 'manual' }, out, sequenceId ? { sequenceId } : undefined);
  });
  await enqueueFollowups(ctx, out);
  return { exited };
}
