// GET /v1/activity/stream: the activity log as Server-Sent Events, from the process's one follower of
// the log (the same LISTEN/NOTIFY feed `nurture logs -f` reads). A client that reconnects sends the
// last id it saw (Last-Event-ID, or ?after=), and gets everything after it first, then live events.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../context.js';
import type { ActivityWithZone } from '../db/activity.js';
import { activityQuery, matchesFilter, readActivity, resolveAccount, toEvent, type ActivityEvent, type ActivityTail } from '../usecases/activityFeed.js';
import { activityRow } from './console/views.js';
import { HttpError } from './respond.js';

const HEARTBEAT_MS = 15_000;
/** A client this far behind is cut off; it reconnects with its Last-Event-ID and catches up from the table. */
const MAX_BUFFERED = 4 * 1024 * 1024;

export async function streamActivity(ctx: Pick<Context, 'db' | 'config'>, tail: ActivityTail, req: IncomingMessage, res: ServerResponse, url: URL, view: 'json' | 'rows'): Promise<void> {
  const { filter, page } = activityQuery(url.searchParams);
  const lastEventId = req.headers['last-event-id'];
  let after = page.after;
  if (typeof lastEventId === 'string' && lastEventId.trim() !== '') {
    if (!/^\d{1,15}$/.test(lastEventId.trim())) throw new HttpError(400, 'invalid_header', 'Last-Event-ID must be an activity id (a whole number)', 'Last-Event-ID');
    after = Number(lastEventId.trim());
  }
  const accountIds = await resolveAccount(ctx.db, filter);
  const zone = ctx.config.funnel.defaults.timeZone;

  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.write('retry: 2000\n\n');
  let lastId = after ?? 0;
  let closed = false;
  const send = (e: ActivityEvent) => {
    if (closed) return;
    lastId = Math.max(lastId, e.id);
    const data = view === 'rows' ? { id: e.id, html: activityRow(e).text } : e;
    res.write(`id: ${lastId}\nevent: ${view === 'rows' ? 'row' : 'activity'}\ndata: ${JSON.stringify(data)}\n\n`);
    if (res.writableLength > MAX_BUFFERED) res.end();
  };

  // Live events are held while the backlog is read, then those not already sent follow it.
  let backlog: Set<number> | null = new Set();
  const held: ActivityWithZone[] = [];
  const onRows = (rows: ActivityWithZone[]) => {
    for (const r of rows) {
      if (!matchesFilter(r, filter, accountIds)) continue;
      if (backlog) held.push(r);
      else send(toEvent(r, zone));
    }
  };
  const unsubscribe = await tail.subscribe(onRows);
  const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
  const stop = () => {
    closed = true;
    clearInterval(heartbeat);
    unsubscribe();
  };
  res.once('close', stop);
  try {
    if (after === undefined) {
      // No place given: from now on.
      lastId = tail.high();
    } else {
      for (let cursor = after; ; ) {
        const p = await readActivity(ctx.db, filter, { after: cursor, limit: 500 }, zone);
        for (const e of p.events) {
          backlog.add(e.id);
          send(e);
        }
        if (p.events.length < 500 || closed) break;
        cursor = p.events.at(-1)!.id;
      }
    }
    // The tail hands out each event once, past where it stood when we subscribed: only the backlog can repeat one.
    for (const r of held) if (!backlog.has(r.id)) send(toEvent(r, zone));
    backlog = null;
  } catch (err) {
    stop();
    res.end();
    throw err;
  }
}
