// Sends one message row, at most once: render, wait for a pooled SMTP connection, take the sending
// limits and claim the row (queued → sending) as the SMTP transaction begins, hand it over, and mark it
// sent only on the relay's 250. Outcomes map to BullMQ's meanings:
// a thrown error is retried, an UnrecoverableError is not, and a rate limit is a deferral (the worker moves
// the job to delayed), never a failure.
import { UnrecoverableError } from 'bullmq';
import { and, count, desc, eq, inArray, min, sql } from 'drizzle-orm';
import type { Sequence } from '../config/schema.js';
import type { Context } from '../context.js';
import { ACTIVITY_CHANNEL, logActivity, type ActivityEntry } from '../db/activity.js';
import { activity, enrollments, messages, signals } from '../db/schema.js';
import { sendRows } from '../db/sendRows.js';
import type { SendCounters } from '../delivery/counters.js';
import { decideLimits, domainOf } from '../delivery/limits.js';
import { afterSent, limitCountersFor, transportFor } from '../mailbox/route.js';
import { describeLocal, nextWindowOpen } from '../engine/time.js';
import { afterTemporaryFailure, attemptsSpanning, bounceVerdict, humanDuration, retryDelay, retryScheduleOf } from '../delivery/policy.js';
import { dkimKeys, dkimOptionFor } from '../mail/dkim.js';
import { replySubject, textEncodingFor, toMailOptions } from '../mail/message.js';
import { senderFor as chooseSender, type MessageSender, type OwnerLike } from '../mail/sender.js';
import { customArgHeaders, providerMessageIdFromReply } from '../engagement/providers/relay.js';
import { SendError, sendTracked } from '../mail/transport.js';
import { bounceAddress, trackingUrls } from '../mail/tracking.js';
import type { SendJob } from '../queue/index.js';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { renderMessage, RenderError, type CompiledTemplate, type RenderedMessage } from '../render/index.js';
import { loadLeadAndAccount, zoneOf } from './engineInput.js';
import { recordSignals } from './recordSignals.js';
import { smtpOutcome } from '../mail/outcome.js';

export type SendResult =
  | { status: 'sent' | 'skipped' | 'suppressed' | 'held' | 'bounced' | 'failed' }
  | { status: 'deferred'; until: Date; why: string };

/** What the send worker knows about this try. */
export interface SendAttempt {
  /** This attempt, from 1 (deferrals don't count). */
  attempt: number;
  /** Where sending limits are counted; null only where no limits can apply (funnel without `sending.limits`). */
  counters: SendCounters | null;
}

const DEFAULT_SOFT_BOUNCES = 3;

export async function sendMessage(ctx: Context, job: SendJob, attempt: SendAttempt): Promise<SendResult> {
  if (!ctx.transport) throw new Error('this process has no SMTP transport');
  // The message, its lead and account, and the address's suppression, in one round trip. Checked at the
  // last moment: an unsubscribe that arrived after the step was queued still wins (and the claim below
  // checks it again in the same statement that marks the row `sending`).
  const rows = sendRows(ctx.database);
  const loaded = await rows.load(job.messageId);
  if (!loaded || loaded.msg.status !== 'queued') return { status: 'skipped' };
  const { msg, lead, account, suppressed } = loaded;
  const seq = ctx.config.sequences.get(msg.sequenceId);
  const step = seq?.steps.find((s) => s.id === msg.stepId);
  const base: Omit<ActivityEntry, 'kind' | 'detail'> = { leadId: lead.id, accountId: account.id, email: lead.email, accountName: account.name, sequenceId: msg.sequenceId, stepId: msg.stepId };

  if (lead.status !== 'active' || suppressed || !seq || step?.type !== 'email') {
    const why = suppressed ? `address suppressed (${suppressed.reason})` : lead.status !== 'active' ? `lead is ${lead.status}` : 'step no longer in the sequence';
    await finish(ctx, msg.id, 'queued', { status: 'cancelled', error: why }, { ...base, kind: 'cancelled', detail: `not sent: ${why}` });
    return { status: 'suppressed' };
  }

  // The person's own choice on the preference page, made after this message was queued: a newsletter to
  // someone who keeps only their rep's mail is not sent at all; nothing goes out during a pause.
  if (lead.mailPreference === 'rep_only' && seq.mode === 'segmented') {
    const why = "the person keeps only their rep's mail (preference page)";
    await finish(ctx, msg.id, 'queued', { status: 'cancelled', error: why }, { ...base, kind: 'cancelled', detail: `not sent: ${why}` });
    return { status: 'suppressed' };
  }
  const zone = zoneOf(ctx, lead, account);
  if (lead.pausedUntil && lead.pausedUntil > ctx.now()) {
    const until = lead.pausedUntil;
    await logActivity(ctx.db, [{ ...base, kind: 'deferred', detail: `deferred until ${until.toISOString()}, ${describeLocal(until, zone)} for the lead (the person paused their mail)`, data: { messageRowId: msg.id, until: until.toISOString(), reason: 'paused' } }]);
    return { status: 'deferred', until, why: 'the person paused their mail' };
  }

  const sender = senderFor(ctx, seq, step, lead.owner);
  const thread = seq.mode === 'one_to_one' && step.thread === 'continue' ? await previousInThread(ctx, msg.enrollmentId, msg.id) : null;
  const urls = trackingUrls(ctx.settings.publicUrl, ctx.settings.trackingSecret, msg.id);
  let rendered: RenderedMessage;
  let templateVersion: string;
  let textEncoding: Mail.TextEncoding;
  const rendering = ctx.metrics?.renderSeconds.startTimer();
  try {
    const compiled = await ctx.templates.load(ctx.config.templatesDir, step.template);
    templateVersion = compiled.version;
    textEncoding = textEncodingOf(compiled);
    rendered = renderMessage(
      compiled,
      {
        lead: { ...lead, attributes: lead.attributes },
        account: { ...account, attributes: account.attributes },
        owner: lead.owner,
        sender: sender.signer,
        postalAddress: ctx.config.funnel.postalAddress ?? null,
        sequence: { id: seq.id, name: seq.name },
        links: { unsubscribe: urls.unsubscribe, preferences: urls.preferences },
      },
      { trackLink: seq.tracking.clicks ? (l) => urls.click(l.id) : null, pixelUrl: seq.tracking.opens ? urls.pixel : null },
    );
    rendering?.();
  } catch (err) {
    if (!(err instanceof RenderError)) throw err;
    // Never "Hi ,": the message is held and says why; the enrollment goes no further until someone acts.
    // The message and its enrollment hold together; the revision moves on, so a step job already
    // waiting for this enrollment finds itself stale.
    await ctx.db.transaction(async (tx) => {
      const held = await tx.update(messages).set({ status: 'held', error: `${err.code}: ${err.message}` }).where(and(eq(messages.id, msg.id), eq(messages.status, 'queued'))).returning({ id: messages.id });
      if (!held.length) return;
      await tx
        .update(enrollments)
        .set({ nextDueAt: null, revision: sql`${enrollments.revision} + 1`, progress: sql`${enrollments.progress} || ${JSON.stringify({ heldBy: msg.id })}::jsonb` })
        .where(and(eq(enrollments.id, msg.enrollmentId), eq(enrollments.state, 'active')));
      await logActivity(tx, [{ ...base, kind: 'held', detail: `held: ${err.message}`, data: { code: err.code, field: err.field } }]);
    });
    return { status: 'held' };
  }
  const subject = step.subject ?? (thread ? replySubject(thread.subject ?? rendered.subject) : rendered.subject);
  const sending = ctx.config.funnel.sending;
  const fromDomain = domainOf(sender.from.email);
  // An unreadable key throws before anything is claimed: the job retries, and ends failed if it stays so.
  const dkim = dkimOptionFor(dkimKeys(sending?.dkim ?? [], ctx.config.dir), fromDomain);

  // One-to-one mail from a rep with a mailbox goes through it (docs/mailboxes.md); the rest through the relay.
  const route = transportFor(ctx, seq, sender.from.email);

  if (limitCountersFor(route, sending, fromDomain, ctx.now()).length && !attempt.counters) throw new Error('sending limits are configured but this worker has no send counters');
  // Set when the sending limits hold the message back at its claim.
  const held: { until?: Date; why?: string } = {};

  // Runs once a pooled connection is this message's own, right before its SMTP transaction: the row is
  // `sending` from the moment the relay may hear of it, and not while it only waits for a connection.
  // The sending limits are taken here too, so a send counts in the window its transaction starts in (taken
  // earlier, a send that then waited for a connection went out in the next window beside that window's
  // own). A limited send gives its slots back, keeps its row queued and waits for its window.
  const claim = async () => {
    const at = ctx.now();
    const counters = limitCountersFor(route, sending, fromDomain, at);
    if (counters.length) {
      const verdict = decideLimits(counters, await attempt.counters!.take(counters, at), at);
      if (!verdict.allowed) {
        await attempt.counters!.giveBack(counters);
        Object.assign(held, { until: verdict.until, why: verdict.why });
        return false;
      }
    }
    // The claim re-checks, in the same statement, what may have changed since the job was queued: the
    // enrollment has not been exited (reply, unsubscribe, stage move) and the address is not suppressed.
    const claimed = await rows.claim({
      id: msg.id,
      at,
      subject,
      fromAddress: sender.from.email,
      templateVersion,
      links: rendered.links,
      inReplyTo: thread?.messageId ?? null,
      references: thread ? [...thread.references, thread.messageId] : [],
    });
    if (!claimed && counters.length) await attempt.counters!.giveBack(counters);
    return claimed;
  };

  let info: Awaited<ReturnType<typeof sendTracked>>;
  const handing = ctx.metrics?.sendSeconds.startTimer();
  try {
    info = await sendTracked(
      route.transport,
      toMailOptions({
        messageId: msg.messageId,
        from: sender.from,
        to: { name: [lead.firstName, lead.lastName].filter(Boolean).join(' ') || null, email: lead.email },
        replyTo: sender.replyTo,
        envelopeFrom: envelopeSender(ctx, msg.id, sender.from.email),
        subject,
        html: rendered.html,
        text: rendered.text,
        inReplyTo: thread?.messageId ?? null,
        references: thread ? [...thread.references, thread.messageId] : [],
        unsubscribeUrl: urls.unsubscribe,
        // The relay's provider echoes our row id in its events: they attach to this exact message.
        headers: customArgHeaders(ctx.settings.providers.relay, msg.id),
        ...(dkim ? { dkim } : {}),
        textEncoding,
      }),
      claim,
    );
  } catch (err) {
    // Not from SMTP (the claim's own query failed): nothing was handed over; the job retries as it is.
    if (!(err instanceof SendError)) throw err;
    const outcome = smtpOutcome(err.cause, err.phase);
    handing?.({ outcome: outcome.kind === 'retry' || outcome.kind === 'uncertain' ? outcome.kind : 'bounced' });
    if (outcome.kind === 'retry') {
      // Nothing reached the recipient: try again on the retry schedule until sending.maxRetryAge has
      // passed since the first failure; only then is it `failed`, and its error says so.
      const schedule = retryScheduleOf(sending);
      const firstFailureAt = (await firstTemporaryFailure(ctx, lead.id, msg.id)) ?? ctx.now();
      const next = afterTemporaryFailure({ attempt: attempt.attempt, firstFailureAt, schedule, now: ctx.now() });
      if (!next.retry) {
        const error = `${next.why}; last reply: ${outcome.reason}`;
        await finish(ctx, msg.id, 'sending', { status: 'failed', error }, { ...base, kind: 'failed', detail: `failed: ${error}`, data: { messageRowId: msg.id, attempts: attempt.attempt, firstFailureAt: firstFailureAt.toISOString() } });
        throw new UnrecoverableError(error);
      }
      // Put the row back so the retry can claim it again.
      const left = schedule.maxAgeMs - (ctx.now().getTime() - firstFailureAt.getTime());
      await finish(ctx, msg.id, 'sending', { status: 'queued', error: outcome.reason }, { ...base, kind: 'retry', detail: `will retry in about ${humanDuration(next.delayMs)} (attempt ${attempt.attempt}; retries for ${humanDuration(left)} more): ${outcome.reason}`, data: { messageRowId: msg.id, attempt: attempt.attempt } });
      throw err;
    }
    if (outcome.kind === 'uncertain') {
      // The relay may have accepted it: never resend on our own (a duplicate costs more trust than a gap).
      // It is uncertain now, not after the timeout: `nurture messages --uncertain` lists it for a person.
      await finish(ctx, msg.id, 'sending', { status: 'uncertain', error: outcome.reason }, { ...base, kind: 'uncertain', detail: `outcome unknown: ${outcome.reason}; not resent (see nurture messages --uncertain)`, data: { messageRowId: msg.id } });
      throw new UnrecoverableError(outcome.reason);
    }
    // Only a dead address suppresses at once; a policy block or a full mailbox only once it keeps happening.
    const [earlier] = await ctx.db
      .select({ n: count() })
      .from(signals)
      .where(and(eq(signals.leadId, lead.id), eq(signals.kind, 'bounce'), eq(signals.reason, 'soft_bounce')));
    const bounce = bounceVerdict(outcome.status, outcome.permanent, earlier?.n ?? 0, sending?.suppressAfterSoftBounces ?? DEFAULT_SOFT_BOUNCES);
    const note = bounce.suppress ? `; address suppressed: ${bounce.why}` : `; soft bounce ${bounce.softBounces} of ${sending?.suppressAfterSoftBounces ?? DEFAULT_SOFT_BOUNCES} before the address is suppressed`;
    await finish(ctx, msg.id, 'sending', { status: 'bounced', error: outcome.reason, relayResponse: outcome.reason }, { ...base, kind: 'bounced', detail: `bounced: ${outcome.reason}${note}` });
    await recordSignals(ctx, [
      {
        sourceId: `smtp-${msg.id}`,
        kind: 'bounce',
        messageRowId: msg.id,
        leadId: lead.id,
        human: false,
        // recordSignals suppresses and exits on a hard bounce: repeated soft bounces end the same way.
        reason: bounce.suppress ? 'hard_bounce' : 'soft_bounce',
        at: ctx.now(),
        evidence: { smtp: outcome.reason, status: outcome.status, ...(bounce.suppress ? { why: bounce.why } : { softBounces: bounce.softBounces }) },
      },
    ]);
    throw new UnrecoverableError(outcome.reason);
  }
  if (!info && held.until && held.why) {
    // The limit's window reopens at a UTC boundary; the person's send window decides when it may go.
    const window = seq.window ?? ctx.config.funnel.defaults.window;
    const until = window ? nextWindowOpen(held.until, window, zone) : held.until;
    await logActivity(ctx.db, [{ ...base, kind: 'deferred', detail: `deferred until ${until.toISOString()}, ${describeLocal(until, zone)} for the lead (${held.why})`, data: { messageRowId: msg.id, until: until.toISOString(), reason: 'rate_limit' } }]);
    return { status: 'deferred', until, why: held.why };
  }
  // Not claimed: the message changed while this send waited (sent, cancelled, exited, suppressed).
  if (!info) return { status: 'skipped' };
  // The relay said 250: the person has it. Record that even through a database blip (a restart, a
  // failover) rather than leave the row to become 'uncertain'. A 250 that arrives after reconcile
  // called the row uncertain still makes it sent.
  handing?.({ outcome: 'sent' });
  const sentAt = ctx.now();
  // A known provider's relay names its own message id in the 250: its events can be matched by it.
  const providerMessageId = providerMessageIdFromReply(ctx.settings.providers.relay, info.response);
  await persistently(() =>
    rows.markSent({ id: msg.id, at: sentAt, relayResponse: String(info.response ?? ''), providerMessageId, entry: { ...base, kind: 'sent', detail: `sent "${subject}" from ${sender.from.email}`, data: { messageId: msg.messageId, relay: info.response } } }),
  );
  // Through a rep's mailbox: its Sent copy is a job of its own, which never delays or fails this send.
  await afterSent(ctx, route, msg.id, msg.messageId);
  return { status: 'sent' };
}

/** Retries a database write for up to about half a minute: for writes that record what already happened. */
async function persistently(write: () => Promise<void>): Promise<void> {
  for (let attempt = 0, delay = 250; ; attempt++, delay = Math.min(delay * 2, 4000)) {
    try {
      return await write();
    } catch (err) {
      if (attempt >= 10) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * A send job failed for good (attempts spent on an error outside SMTP, e.g. an unreadable DKIM key): a
 * row still `queued` ends `failed` with the error, so nothing waits forever for a job that is gone.
 */
export async function failUnsent(ctx: Context, messageRowId: string, reason: string): Promise<boolean> {
  const [msg] = await ctx.db.select().from(messages).where(eq(messages.id, messageRowId));
  if (!msg || msg.status !== 'queued') return false;
  const la = await loadLeadAndAccount(ctx.db, msg.leadId);
  const entry: ActivityEntry = {
    leadId: msg.leadId,
    accountId: la?.account.id ?? null,
    email: msg.toAddress,
    accountName: la?.account.name ?? null,
    sequenceId: msg.sequenceId,
    stepId: msg.stepId,
    kind: 'failed',
    detail: `failed: ${reason}`,
    data: { messageRowId },
  };
  let done = false;
  await ctx.db.transaction(async (tx) => {
    const r = await tx.update(messages).set({ status: 'failed', error: reason }).where(and(eq(messages.id, messageRowId), eq(messages.status, 'queued'))).returning({ id: messages.id });
    if (r.length) await logActivity(tx, [entry]);
    done = r.length > 0;
  });
  return done;
}

/** When this message first met a temporary failure: its first `retry` entry in the log. */
async function firstTemporaryFailure(ctx: Context, leadId: string, messageRowId: string): Promise<Date | null> {
  const [r] = await ctx.db
    .select({ at: min(activity.at) })
    .from(activity)
    .where(and(eq(activity.leadId, leadId), eq(activity.kind, 'retry'), sql`${activity.data}->>'messageRowId' = ${messageRowId}`));
  return r?.at ?? null;
}

/**
 * Moves the row on from `from` and, only if it moved, logs the entry and wakes the log's followers: one
 * statement (one round trip, atomic on its own), where a transaction of three statements took five.
 * The same insert and notification as logActivity (db/activity.ts).
 */
async function finish(ctx: Context, id: string, from: string | string[], set: Partial<typeof messages.$inferInsert>, entry: ActivityEntry): Promise<void> {
  const moved = ctx.db.update(messages).set(set).where(and(eq(messages.id, id), inArray(messages.status, [from].flat()))).returning({ id: messages.id });
  await ctx.db.execute(sql`
    with moved as (${moved.getSQL()}),
    logged as (
      insert into ${activity} (lead_id, account_id, email, account_name, sequence_id, step_id, kind, detail, data)
      select ${entry.leadId ?? null}::uuid, ${entry.accountId ?? null}::uuid, ${entry.email ?? null}::text, ${entry.accountName ?? null}::text,
             ${entry.sequenceId ?? null}::text, ${entry.stepId ?? null}::text, ${entry.kind}::text, ${entry.detail}::text, ${JSON.stringify(entry.data ?? {})}::jsonb
      from moved
      returning 1
    )
    select pg_notify(${ACTIVITY_CHANNEL}, '') from logged`);
}

const textEncodings = new WeakMap<CompiledTemplate, Mail.TextEncoding>();
/** A template version's text encoding, chosen once from its HTML (personalised values rarely tip it). */
function textEncodingOf(compiled: CompiledTemplate): Mail.TextEncoding {
  let encoding = textEncodings.get(compiled);
  if (!encoding) textEncodings.set(compiled, (encoding = textEncodingFor(compiled.htmlTemplate)));
  return encoding;
}

/** The per-message envelope sender (VERP), or null to let the From address stand (inbound.verp: false). */
function envelopeSender(ctx: Context, messageRowId: string, fromEmail: string): string | null {
  const inbound = ctx.config.funnel.inbound;
  if (inbound && !inbound.verp) return null;
  return bounceAddress(ctx.settings.trackingSecret, messageRowId, inbound?.bounceDomain ?? domainOf(fromEmail));
}

function senderFor(ctx: Context, seq: Sequence, step: { sender?: string | undefined }, owner: OwnerLike | null): MessageSender {
  const sender = chooseSender(ctx.config.funnel, seq, step, owner);
  if (!sender) throw new UnrecoverableError(`sequence ${seq.id} has no sender: add one under senders in funnel.yaml`);
  return sender;
}

/** The last message this enrollment sent: a follow-up answers it, so the person sees one conversation. */
async function previousInThread(ctx: Context, enrollmentId: string, selfId: string) {
  const [prev] = await ctx.db
    .select({ messageId: messages.messageId, subject: messages.subject, references: messages.references })
    .from(messages)
    .where(and(eq(messages.enrollmentId, enrollmentId), eq(messages.status, 'sent'), sql`${messages.id} <> ${selfId}`))
    .orderBy(desc(messages.sentAt))
    .limit(1);
  return prev ?? null;
}

/**
 * The send worker's backoff (BullMQ `settings.backoffStrategy`): the retry schedule's wait, plus up to
 * 20 % so that messages refused together don't all come back together. A temporary SMTP failure is
 * retried until sendMessage finds its age run out; any other error (a database or key problem before
 * the relay was reached) for as many attempts as the schedule needs to span the same age.
 */
export function sendRetryBackoff(ctx: Pick<Context, 'config'>): (attemptsMade: number, type?: string, err?: Error) => number {
  const schedule = retryScheduleOf(ctx.config.funnel.sending);
  const cap = attemptsSpanning(schedule);
  return (attemptsMade, _type, err) => {
    if (err?.name !== 'SendError' && attemptsMade >= cap) return -1;
    return Math.round(retryDelay(attemptsMade, schedule) * (1 + Math.random() * 0.2));
  };
}
