// Sends one message row, at most once: claim the row (queued → sending), render, hand to SMTP, and mark
// it sent only on the relay's 250. Outcomes map to BullMQ's meanings: a thrown error is retried, an
// UnrecoverableError is not.
import { UnrecoverableError } from 'bullmq';
import { and, desc, eq, sql } from 'drizzle-orm';
import type { Sequence } from '../config/schema.js';
import type { Context } from '../context.js';
import { logActivity, type ActivityEntry } from '../db/activity.js';
import { enrollments, messages, suppressions } from '../db/schema.js';
import { replySubject, toMailOptions, type Address } from '../mail/message.js';
import { trackingUrls } from '../mail/tracking.js';
import type { SendJob } from '../queue/index.js';
import { loadTemplateSource, renderMessage, RenderError, type RenderedMessage } from '../render/index.js';
import { loadLeadAndAccount } from './engineInput.js';
import { recordSignals } from './recordSignals.js';
import { smtpOutcome } from '../mail/outcome.js';

export type SendResult = 'sent' | 'skipped' | 'suppressed' | 'held' | 'bounced';

export async function sendMessage(ctx: Context, job: SendJob): Promise<SendResult> {
  if (!ctx.transport) throw new Error('this process has no SMTP transport');
  const [msg] = await ctx.db.select().from(messages).where(eq(messages.id, job.messageId));
  if (!msg || msg.status !== 'queued') return 'skipped';
  const la = await loadLeadAndAccount(ctx.db, msg.leadId);
  if (!la) return 'skipped';
  const { lead, account } = la;
  const seq = ctx.config.sequences.get(msg.sequenceId);
  const step = seq?.steps.find((s) => s.id === msg.stepId);
  const base: Omit<ActivityEntry, 'kind' | 'detail'> = { leadId: lead.id, accountId: account.id, email: lead.email, accountName: account.name, sequenceId: msg.sequenceId, stepId: msg.stepId };

  // Checked at the last moment: an unsubscribe that arrived after the step was queued still wins.
  const [suppressed] = await ctx.db.select().from(suppressions).where(eq(suppressions.email, lead.email));
  if (lead.status !== 'active' || suppressed || !seq || step?.type !== 'email') {
    const why = suppressed ? `address suppressed (${suppressed.reason})` : lead.status !== 'active' ? `lead is ${lead.status}` : 'step no longer in the sequence';
    await finish(ctx, msg.id, 'queued', { status: 'cancelled', error: why }, { ...base, kind: 'cancelled', detail: `not sent: ${why}` });
    return 'suppressed';
  }

  const sender = senderFor(ctx, seq, step, lead.owner);
  const thread = seq.mode === 'one_to_one' && step.thread === 'continue' ? await previousInThread(ctx, msg.enrollmentId, msg.id) : null;
  const urls = trackingUrls(ctx.settings.publicUrl, ctx.settings.trackingSecret, msg.id);
  let rendered: RenderedMessage;
  let templateVersion: string;
  try {
    const compiled = await ctx.templates.get(loadTemplateSource(ctx.config.templatesDir, step.template));
    templateVersion = compiled.version;
    rendered = renderMessage(
      compiled,
      {
        lead: { ...lead, attributes: lead.attributes },
        account: { ...account, attributes: account.attributes },
        owner: lead.owner,
        sequence: { id: seq.id, name: seq.name },
        links: { unsubscribe: urls.unsubscribe },
      },
      { trackLink: seq.tracking.clicks ? (l) => urls.click(l.id) : null, pixelUrl: seq.tracking.opens ? urls.pixel : null },
    );
  } catch (err) {
    if (!(err instanceof RenderError)) throw err;
    // Never "Hi ,": the message is held and says why; the enrollment goes no further until someone acts.
    await finish(ctx, msg.id, 'queued', { status: 'held', error: `${err.code}: ${err.message}` }, { ...base, kind: 'held', detail: `held: ${err.message}`, data: { code: err.code, field: err.field } });
    await ctx.db.update(enrollments).set({ nextDueAt: null, progress: sql`${enrollments.progress} || '{"heldBy":"render"}'::jsonb` }).where(eq(enrollments.id, msg.enrollmentId));
    return 'held';
  }
  const subject = step.subject ?? (thread ? replySubject(thread.subject ?? rendered.subject) : rendered.subject);

  const claimed = await ctx.db
    .update(messages)
    .set({
      status: 'sending',
      sendingAt: ctx.now(),
      attempts: sql`${messages.attempts} + 1`,
      subject,
      fromAddress: sender.from.email,
      templateVersion,
      links: rendered.links,
      inReplyTo: thread?.messageId ?? null,
      references: thread ? [...thread.references, thread.messageId] : [],
    })
    .where(and(eq(messages.id, msg.id), eq(messages.status, 'queued')))
    .returning({ id: messages.id });
  if (!claimed.length) return 'skipped';

  try {
    const info = await ctx.transport.sendMail(
      toMailOptions({
        messageId: msg.messageId,
        from: sender.from,
        to: { name: [lead.firstName, lead.lastName].filter(Boolean).join(' ') || null, email: lead.email },
        replyTo: sender.replyTo,
        subject,
        html: rendered.html,
        text: rendered.text,
        inReplyTo: thread?.messageId ?? null,
        references: thread ? [...thread.references, thread.messageId] : [],
        unsubscribeUrl: urls.unsubscribe,
      }),
    );
    await finish(ctx, msg.id, 'sending', { status: 'sent', sentAt: ctx.now(), relayResponse: String(info.response ?? '') }, { ...base, kind: 'sent', detail: `sent "${subject}" from ${sender.from.email}`, data: { messageId: msg.messageId, relay: info.response } });
    return 'sent';
  } catch (err) {
    const outcome = smtpOutcome(err);
    if (outcome.kind === 'retry') {
      // Nothing reached the recipient: put the row back so the retry can claim it again.
      await finish(ctx, msg.id, 'sending', { status: 'queued', error: outcome.reason }, { ...base, kind: 'retry', detail: `will retry: ${outcome.reason}` });
      throw err;
    }
    if (outcome.kind === 'uncertain') {
      // The relay may have accepted it: never resend on our own (a duplicate costs more trust than a gap).
      await logActivity(ctx.db, [{ ...base, kind: 'uncertain', detail: `outcome unknown: ${outcome.reason}` }]);
      throw new UnrecoverableError(outcome.reason);
    }
    await finish(ctx, msg.id, 'sending', { status: 'bounced', error: outcome.reason, relayResponse: outcome.reason }, { ...base, kind: 'bounced', detail: `bounced: ${outcome.reason}` });
    await recordSignals(ctx, [
      { sourceId: `smtp-${msg.id}`, kind: 'bounce', messageRowId: msg.id, leadId: lead.id, human: false, reason: outcome.permanent ? 'hard_bounce' : 'soft_bounce', at: ctx.now(), evidence: { smtp: outcome.reason, status: outcome.status } },
    ]);
    throw new UnrecoverableError(outcome.reason);
  }
}

async function finish(ctx: Context, id: string, from: string, set: Partial<typeof messages.$inferInsert>, entry: ActivityEntry): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const done = await tx.update(messages).set(set).where(and(eq(messages.id, id), eq(messages.status, from))).returning({ id: messages.id });
    if (done.length) await logActivity(tx, [entry]);
  });
}

function senderFor(ctx: Context, seq: Sequence, step: { sender?: string | undefined }, owner: { name: string; email: string } | null): { from: Address; replyTo: string | null } {
  const key = step.sender ?? seq.sender ?? (seq.mode === 'one_to_one' ? 'owner' : undefined);
  if (key === 'owner' && owner) return { from: { name: owner.name, email: owner.email }, replyTo: null };
  const senders = ctx.config.funnel.senders;
  const brand = (key && key !== 'owner' ? senders[key] : undefined) ?? Object.values(senders)[0];
  if (!brand) throw new UnrecoverableError(`sequence ${seq.id} has no sender: add one under senders in funnel.yaml`);
  return { from: { name: brand.name, email: brand.email }, replyTo: brand.replyTo ?? null };
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
