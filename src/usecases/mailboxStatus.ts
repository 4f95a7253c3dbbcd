// How each rep's mailbox watcher is doing, written where `nurture logs` and the console read it: the
// mailbox_watch row always, the activity log only when something changes (connected, a new error, the
// same error an hour later), so a mailbox that keeps failing is one line an hour, not one per retry.
import type { Context } from '../context.js';
import { logActivity } from '../db/activity.js';
import { allWatchRows, watchConnected, watchFailed, watchStarting, watchStopped, type MailboxWatchRow } from '../db/mailboxes.js';
import { humanDuration } from '../delivery/policy.js';

export async function mailboxStarting(ctx: Pick<Context, 'db'>, address: string, folder: string, holder: string): Promise<void> {
  await watchStarting(ctx.db, address, folder, holder);
}

export async function mailboxConnected(ctx: Pick<Context, 'db'>, address: string, folder: string, holder: string): Promise<void> {
  const failures = await watchConnected(ctx.db, address, holder);
  await logActivity(ctx.db, [
    { kind: 'mailbox', email: address, detail: `mailbox ${address}: watching ${folder}${failures ? ` again, after ${failures} failed attempt${failures === 1 ? '' : 's'}` : ''}`, data: { mailbox: address, state: 'watching', holder } },
  ]);
}

export async function mailboxFailed(ctx: Pick<Context, 'db'>, address: string, error: string, retryInMs: number): Promise<void> {
  const now = new Date();
  const nextRetryAt = new Date(now.getTime() + retryInMs);
  const { log, failures } = await watchFailed(ctx.db, address, error, nextRetryAt, now);
  if (!log) return;
  await logActivity(ctx.db, [
    { kind: 'mailbox', email: address, detail: `mailbox ${address}: ${error}; retrying in ${humanDuration(retryInMs)} (attempt ${failures}; the same error is logged again at most hourly)`, data: { mailbox: address, state: 'retrying', error, nextRetryAt: nextRetryAt.toISOString() } },
  ]);
}

export async function mailboxStopped(ctx: Pick<Context, 'db'>, address: string, holder: string): Promise<void> {
  await watchStopped(ctx.db, address, holder);
}

export interface MailboxHealth {
  address: string;
  /** What it does: sends (smtp), reads (imap). */
  sends: boolean;
  reads: boolean;
  /** not_started: configured, but no worker has watched it yet. */
  state: 'not_started' | 'connecting' | 'watching' | 'retrying' | 'stopped' | 'send_only';
  holder: string | null;
  connectedAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  failures: number;
  nextRetryAt: string | null;
  lastUid: number | null;
}

/** Every configured mailbox with what its watcher last reported. */
export async function mailboxHealth(ctx: Pick<Context, 'db' | 'config'>): Promise<MailboxHealth[]> {
  const boxes = [...(ctx.config.mailboxes?.values() ?? [])];
  if (!boxes.length) return [];
  const rows = new Map<string, MailboxWatchRow>((await allWatchRows(ctx.db)).map((r) => [r.address, r]));
  return boxes.map((b) => {
    const r = rows.get(b.address);
    const state: MailboxHealth['state'] = !b.imap ? 'send_only' : ((r?.state as MailboxHealth['state'] | undefined) ?? 'not_started');
    return {
      address: b.address,
      sends: !!b.smtp,
      reads: !!b.imap,
      state,
      holder: r?.holder ?? null,
      connectedAt: r?.connectedAt?.toISOString() ?? null,
      lastError: r?.lastError ?? null,
      lastErrorAt: r?.lastErrorAt?.toISOString() ?? null,
      failures: r?.failures ?? 0,
      nextRetryAt: r?.state === 'retrying' ? (r.nextRetryAt?.toISOString() ?? null) : null,
      lastUid: r?.lastUid ?? null,
    };
  });
}
