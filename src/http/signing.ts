// Standard Webhooks headers for a body: what our signing script, tests and outbound webhooks send.
import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

export function signedHeaders(secret: string, body: string, opts: { id?: string; at?: Date } = {}): Record<string, string> {
  const id = opts.id ?? `msg_${randomUUID()}`;
  const at = opts.at ?? new Date();
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, at, body),
  };
}
