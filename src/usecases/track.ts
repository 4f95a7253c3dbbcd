// Pixel hits and link clicks one at a time (the HTTP API without micro-batching): the same path as a
// batch of one.
import type { Context } from '../context.js';
import { trackHits, type Hit } from './trackBatch.js';

export type { Hit } from './trackBatch.js';

export async function recordOpen(ctx: Context, hit: Hit): Promise<boolean> {
  const [answer] = await trackHits(ctx, [{ kind: 'open', hit, at: ctx.now() }]);
  return answer !== null;
}

/** The link's own URL, from the message row (never from the request: no open redirect), or null. */
export async function recordClick(ctx: Context, hit: Hit & { linkId: string }): Promise<string | null> {
  const [answer] = await trackHits(ctx, [{ kind: 'click', hit, at: ctx.now() }]);
  return answer ?? null;
}
