// Subscribing nurture to an SES events topic: SNS posts a SubscriptionConfirmation (already verified:
// signed, fresh, from one of SES_TOPIC_ARNS, its SubscribeURL on an SNS host) and the subscription stays
// pending until its SubscribeURL is fetched. A redelivered confirmation is answered as the first was.
import type { Context } from '../context.js';
import { logActivity } from '../db/activity.js';
import { priorSnsAnswer, rememberSnsAnswer } from '../db/providerEvents.js';

export interface SnsSubscriptionConfirmation {
  MessageId: string;
  TopicArn: string;
  SubscribeURL: string;
}

export type SnsConfirmResult =
  | { confirmed: true; topicArn: string; subscriptionArn: string | null; duplicate?: true }
  | { confirmed: false; topicArn: string; why: string };

const CONFIRM_TIMEOUT_MS = 10_000;

export async function confirmSnsSubscription(ctx: Context, c: SnsSubscriptionConfirmation): Promise<SnsConfirmResult> {
  const prior = (await priorSnsAnswer(ctx.db, c.MessageId)) as { subscriptionArn?: string | null } | null;
  if (prior) return { confirmed: true, topicArn: c.TopicArn, subscriptionArn: prior.subscriptionArn ?? null, duplicate: true };

  const get = ctx.settings.providers.snsFetch ?? fetch;
  const host = new URL(c.SubscribeURL).host;
  let why: string;
  try {
    const res = await get(c.SubscribeURL, { signal: AbortSignal.timeout(CONFIRM_TIMEOUT_MS) });
    const body = await res.text().catch(() => '');
    if (res.ok) {
      const subscriptionArn = xmlText(body, 'SubscriptionArn');
      await rememberSnsAnswer(ctx.db, c.MessageId, { confirmed: true, topicArn: c.TopicArn, subscriptionArn }, [
        { kind: 'esp_subscription', detail: `ses: confirmed the SNS subscription to ${c.TopicArn}${subscriptionArn ? ` (${subscriptionArn})` : ''}`, data: { topicArn: c.TopicArn, subscriptionArn, snsMessageId: c.MessageId }, at: ctx.now() },
      ]);
      return { confirmed: true, topicArn: c.TopicArn, subscriptionArn };
    }
    // SNS explains a refusal in an XML ErrorResponse: <Code> and <Message>.
    const code = xmlText(body, 'Code');
    const message = xmlText(body, 'Message');
    why = `${host} answered HTTP ${res.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`;
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError';
    why = timedOut ? `${host} did not answer within ${CONFIRM_TIMEOUT_MS / 1000}s` : `could not reach ${host}: ${e.cause?.code ?? e.cause?.message ?? e.message}`;
  }
  // Each failed attempt is its own line: the operator sees why the topic stays pending.
  console.warn(`[providers] could not confirm the SNS subscription to ${c.TopicArn}: ${why}`);
  await logActivity(ctx.db, [{ kind: 'esp_subscription_failed', detail: `ses: could not confirm the SNS subscription to ${c.TopicArn}: ${why}`, data: { topicArn: c.TopicArn, snsMessageId: c.MessageId, why }, at: ctx.now() }]);
  return { confirmed: false, topicArn: c.TopicArn, why };
}

function xmlText(xml: string, tag: string): string | null {
  const m = new RegExp(`<${tag}>\\s*([^<]*?)\\s*</${tag}>`).exec(xml);
  return m?.[1] || null;
}
