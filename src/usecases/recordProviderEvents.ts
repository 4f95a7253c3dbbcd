// Events from an email service provider's webhook (already verified and parsed), recorded against the
// exact message they name (custom argument → provider message id → our Message-ID), else against the
// lead by address, with how they were matched kept in the evidence. Engagement and suppression go
// through recordSignals (idempotent on the event's id); deliveries, deferrals and drops that suppress
// nothing are log lines, each written once however often the provider redelivers the event.
import type { Context } from '../context.js';
import { logActivityOnce, type ActivityEntry } from '../db/activity.js';
import { leadIdsByEmail, messagesForEvents, rememberProviderMessageIds, type MessageForEvent } from '../db/providerEvents.js';
import type { OtherHit } from '../engagement/classification.js';
import { indexCandidates, lookupKeys, matchEvent, providerMessageKey, type MatchMethod, type ProviderEvent } from '../engagement/providers/index.js';
import { recordSignals, type SignalInput } from './recordSignals.js';
import { classifyOptions, clicksOnMessages, judgeHit } from './trackBatch.js';

/** Other hits this long before the earliest event are looked at: bursts and re-checks take seconds. */
const LOOK_BACK_MS = 3_600_000;

export interface ProviderEventsResult {
  /** Signals newly recorded (a redelivered event records none). */
  recorded: number;
  duplicates: number;
  /** Events naming neither a message nor a lead of ours. */
  unmatched: number;
  /** Log lines newly written for events that record no signal. */
  logged: number;
  /** How each event was matched. */
  matched: Record<MatchMethod, number>;
}

export async function recordProviderEvents(ctx: Context, events: ProviderEvent[]): Promise<ProviderEventsResult> {
  const keys = lookupKeys(events);
  const [msgRows, byEmail] = await Promise.all([messagesForEvents(ctx.db, keys), leadIdsByEmail(ctx.db, keys.emails)]);
  const candidates = indexCandidates(msgRows);

  // The messages' other hits, so a provider's opens and clicks are judged as ours are: bursts, renders, re-checks.
  let earliest = Infinity;
  for (const e of events) earliest = Math.min(earliest, e.at.getTime());
  const hitsOf = await clicksOnMessages(ctx.db, msgRows.map((m) => m.id), new Date(earliest - LOOK_BACK_MS));
  // Each message's hits so far, earlier events of this batch included: later ones are judged against them,
  // as they would have been one by one. One list a message, pushed to (never copied per event).
  const hitsOn = (messageRowId: string): OtherHit[] => {
    let hits = hitsOf.get(messageRowId);
    if (!hits) hitsOf.set(messageRowId, (hits = []));
    return hits;
  };
  // A provider reports the hit, not the request: no headers to read, so no rule may rely on their absence.
  const opts = { ...classifyOptions(ctx), headersKnown: false };

  const signals: SignalInput[] = [];
  const notes: (ActivityEntry & { receipt: string })[] = [];
  const learnt = new Map<string, string>();
  const matched: Record<MatchMethod, number> = { custom_arg: 0, provider_message_id: 0, message_id: 0, address: 0 };
  let unmatched = 0;
  for (const e of events) {
    const m = matchEvent(e, candidates);
    const msg: MessageForEvent | null = m.message;
    const leadId = msg?.leadId ?? (e.email ? byEmail.get(e.email) : undefined);
    if (!leadId || !m.method) {
      unmatched++;
      continue;
    }
    matched[m.method]++;
    // The first event that names a message by our id teaches us the provider's id for it.
    const key = providerMessageKey(e.provider, e.providerMessageId);
    if (msg && key && !msg.providerMessageId && !learnt.has(msg.id)) learnt.set(msg.id, key);

    const sourceId = `${e.provider}-${e.sourceId}`;
    const evidence = { provider: e.provider, providerMessageId: e.providerMessageId, match: m.method, raw: e.raw };
    const base = { sourceId, messageRowId: msg?.id ?? null, leadId, at: e.at, evidence };
    const request = { userAgent: e.userAgent ?? null, ip: e.ip ?? null, method: 'GET', headers: {} };
    const seen = { userAgent: request.userAgent, ip: request.ip };
    switch (e.kind) {
      case 'open': {
        // The provider's own machine-open flag (Apple's proxy) outranks what the user agent suggests.
        const hits = msg ? hitsOn(msg.id) : null;
        const c = e.machineOpen ? { human: false, reason: 'apple_mpp', evidence: { rule: 'Provider machine-open flag' } } : judgeHit({ kind: 'open', request, at: e.at, linkId: null }, msg ?? { sentAt: null, links: [] }, hits ?? [], opts);
        hits?.push({ kind: 'open', linkId: null, at: e.at, ...seen, human: c.human, reason: c.reason });
        signals.push({ ...base, kind: 'open', human: c.human, reason: c.reason, evidence: { ...evidence, ...seen, ...(e.machineOpen ? { providerMachineOpen: true } : {}), ...(c.evidence ? { verdict: c.evidence } : {}) } });
        break;
      }
      case 'click': {
        // The provider names the URL; our link of that URL is the link (a walk is counted over our links).
        const linkId = msg?.links.find((l) => l.url === e.url)?.id ?? e.url ?? null;
        const hits = msg ? hitsOn(msg.id) : null;
        const c = judgeHit({ kind: 'click', request, at: e.at, linkId }, msg ?? { sentAt: null, links: [] }, hits ?? [], opts);
        hits?.push({ kind: 'click', linkId, at: e.at, ...seen, human: c.human, reason: c.reason });
        signals.push({ ...base, kind: 'click', human: c.human, reason: c.reason, linkId, evidence: { ...evidence, ...seen, url: e.url, ...(c.evidence ? { verdict: c.evidence } : {}) } });
        break;
      }
      case 'bounce':
        signals.push({ ...base, kind: 'bounce', human: false, reason: e.bounce?.permanent ? 'hard_bounce' : 'soft_bounce', evidence: { ...evidence, smtp: e.bounce?.diagnostic, status: e.bounce?.status } });
        break;
      case 'complaint':
        signals.push({ ...base, kind: 'complaint', human: true, reason: `${e.provider}_complaint` });
        break;
      case 'unsubscribe':
        signals.push({ ...base, kind: 'unsubscribe', human: true, reason: `${e.provider}_unsubscribe` });
        break;
      case 'dropped':
        if (e.suppresses) {
          // The provider refused to send because the address is on its bounce, unsubscribe or spam-report
          // list: that earlier event happened, so it suppresses here as the event itself would have.
          signals.push(droppedSignal(e, base, e.suppresses));
          break;
        }
        notes.push(note(e, msg, leadId, sourceId, m.method));
        break;
      default:
        // delivered, deferred: worth seeing in the log, not engagement.
        notes.push(note(e, msg, leadId, sourceId, m.method));
    }
  }
  if (learnt.size) await rememberProviderMessageIds(ctx.db, [...learnt].map(([messageRowId, providerMessageId]) => ({ messageRowId, providerMessageId })));
  const r = await recordSignals(ctx, signals);
  const logged = await logActivityOnce(ctx.db, notes);
  return { recorded: r.recorded, duplicates: r.duplicates + (notes.length - logged), unmatched, logged, matched };
}

type Base = Pick<SignalInput, 'sourceId' | 'messageRowId' | 'leadId' | 'at'> & { evidence: Record<string, unknown> };

function droppedSignal(e: ProviderEvent, base: Base, suppresses: NonNullable<ProviderEvent['suppresses']>): SignalInput {
  const why = e.bounce?.diagnostic ?? 'suppressed address';
  const evidence = { ...base.evidence, dropped: why };
  switch (suppresses) {
    case 'bounce':
      // recordSignals suppresses on reason hard_bounce; the drop's reason is what the log shows.
      return { ...base, kind: 'bounce', human: false, reason: 'hard_bounce', evidence: { ...evidence, smtp: `${e.provider} dropped: ${why}` } };
    case 'unsubscribe':
      return { ...base, kind: 'unsubscribe', human: true, reason: `${e.provider}_dropped_unsubscribed`, evidence };
    case 'complaint':
      return { ...base, kind: 'complaint', human: true, reason: `${e.provider}_dropped_spam_reported`, evidence };
  }
}

function note(e: ProviderEvent, msg: MessageForEvent | null, leadId: string, sourceId: string, match: MatchMethod): ActivityEntry & { receipt: string } {
  const why = e.bounce?.diagnostic ? ` (${e.bounce.diagnostic})` : '';
  return {
    receipt: `provider-event:${sourceId}`,
    leadId,
    email: e.email,
    sequenceId: msg?.sequenceId ?? null,
    stepId: msg?.stepId ?? null,
    kind: `esp_${e.kind}`,
    detail: `${e.provider}: ${e.kind}${why}`,
    data: { sourceId, provider: e.provider, providerMessageId: e.providerMessageId, messageRowId: msg?.id ?? null, match },
    at: e.at,
  };
}
