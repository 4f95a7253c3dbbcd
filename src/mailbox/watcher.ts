// A watcher per rep's mailbox: holds the mailbox's lock (one watcher across all processes), keeps an IMAP
// connection on the inbox, and hands each new message, in UID order, to receiveMailboxMessage. IDLE tells
// it of new mail at once; a poll every `imap.poll` covers servers or networks where IDLE goes quiet.
// A dropped connection, a refused password or a server restart is retried with backoff and reported
// (mailbox_watch, the activity log), never a crash; each mailbox runs on its own, so one failing stops
// neither the others nor the sending. It opens the inbox read-only unless told to mark or move what it read.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ImapFlow } from 'imapflow';
import type { ImapSettings, Mailbox } from '../config/mailboxes.js';
import { parseDuration } from '../config/duration.js';
import type { Context } from '../context.js';
import { checkpointFor } from '../db/mailboxes.js';
import { mailboxConnected, mailboxFailed, mailboxStarting, mailboxStopped } from '../usecases/mailboxStatus.js';
import { isTransient, passOverMailboxMessage, receiveMailboxMessage } from '../usecases/receiveMailboxMessage.js';
import { describeMailboxError, MailboxError } from './errors.js';
import { closeImap, connectImap } from './imap.js';
import { redisMailboxLocks, type MailboxLocks } from './lock.js';

export interface WatcherOptions {
  /** Names this process in the lock and the health view. */
  holderId?: string;
  /** How long a lock outlives a holder that stopped renewing it: the longest a mailbox goes unwatched when a process dies. */
  lockTtlMs?: number;
  /** Reconnect backoff: doubles from `baseMs` up to `maxMs`. */
  backoff?: { baseMs: number; maxMs: number };
}

export interface MailboxWatchers {
  holderId: string;
  /** Mailboxes this process holds the lock of right now. */
  watching(): string[];
  /** Stops: closes the connections, gives the locks back. */
  close(): Promise<void>;
  /** As if the process died: connections dropped, locks left to expire (for tests of takeover). */
  kill(): Promise<void>;
}

const DEFAULT_LOCK_TTL_MS = 30_000;
const DEFAULT_BACKOFF = { baseMs: 2_000, maxMs: 5 * 60_000 };
const BATCH = 25;
/**
 * How much of a message is read: a reply's words, an out-of-office or a bounce's report sit in its first
 * parts, while an attachment can be tens of megabytes (times a batch, held in memory and parsed). The head
 * is fetched (BODY.PEEK[]<0.N>); the parser reads a cut-off message as far as it goes.
 */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** A message whose recording failed this many times in a row (not for a transient reason) is passed over. */
const MAX_MESSAGE_FAILURES = 5;

/** A session that stayed up this long was a good one: the next failure starts the backoff over. */
export const STABLE_SESSION_MS = 60_000;

/**
 * Failures in a row after a session that ended after `lastedMs` (null: it never got as far as the inbox).
 * A server that takes the login and then drops the connection at once (throttling, a proxy) is not a
 * fresh start each time: only a session that stayed up resets the count.
 */
export function failuresAfter(failures: number, lastedMs: number | null): number {
  return lastedMs !== null && lastedMs >= STABLE_SESSION_MS ? 1 : failures + 1;
}

/** How long to wait before reconnecting after `failures` failures in a row (1-based), with up to 20 % jitter. */
export function reconnectDelayMs(failures: number, backoff = DEFAULT_BACKOFF, random = Math.random): number {
  const base = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (1 + random() * 0.2));
}

/** Starts a watcher for every configured mailbox with IMAP. Returns at once; each runs until closed. */
export function startMailboxWatchers(ctx: Context, opts: WatcherOptions = {}): MailboxWatchers {
  const holderId = opts.holderId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const ttl = opts.lockTtlMs ?? DEFAULT_LOCK_TTL_MS;
  const boxes = [...ctx.config.mailboxes.values()].filter((b) => b.imap);
  const locks = boxes.length ? redisMailboxLocks(ctx.queues.settings.connection, ctx.queues.settings.prefix, holderId, ttl) : null;
  const watches = boxes.map((b) => new Watch(ctx, b, locks!, holderId, ttl, opts.backoff ?? DEFAULT_BACKOFF));
  for (const w of watches) void w.run();
  const stop = async (killed: boolean) => {
    await Promise.all(watches.map((w) => w.stop(killed)));
    await locks?.close();
  };
  return { holderId, watching: () => watches.filter((w) => w.holding).map((w) => w.box.address), close: () => stop(false), kill: () => stop(true) };
}

class Watch {
  holding = false;
  private stopped = false;
  private killed = false;
  private lost = false;
  private client: ImapFlow | null = null;
  private failures = 0;
  /** When the current session reached the inbox; null before, and after it ended. */
  private connectedAt: number | null = null;
  /** The message recording last failed on, and how many times in a row (a message that always fails must not stop the inbox). */
  private stuck: { uidValidity: bigint; uid: number; failures: number } | null = null;
  private interrupt: (() => void) | null = null;
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: Context,
    readonly box: Mailbox,
    private readonly locks: MailboxLocks,
    private readonly holderId: string,
    private readonly ttlMs: number,
    private readonly backoff: { baseMs: number; maxMs: number },
  ) {}

  private get imap(): ImapSettings {
    return this.box.imap!;
  }

  run(): Promise<void> {
    this.done = this.loop().catch((err: unknown) => console.error(`[mailbox ${this.box.address}] watcher stopped on an unexpected error:`, err));
    return this.done;
  }

  async stop(killed: boolean): Promise<void> {
    this.stopped = true;
    this.killed = killed;
    this.interrupt?.();
    if (killed) this.client?.close();
    await this.done;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const held = await this.locks.acquire(this.box.address).catch(() => false);
      if (!held) {
        await this.sleep(Math.max(200, Math.floor(this.ttlMs / 3)));
        continue;
      }
      this.holding = true;
      this.lost = false;
      const renewing = this.renewWhileHeld();
      try {
        await this.holdAndWatch();
      } finally {
        clearInterval(renewing);
        this.holding = false;
        if (!this.killed && !this.lost) {
          await this.locks.release(this.box.address).catch(() => {});
          await mailboxStopped(this.ctx, this.box.address, this.holderId).catch(() => {});
        }
      }
    }
  }

  /** Renews the lock a few times per TTL; a renewal refused (another process has it) ends this watch at once. */
  private renewWhileHeld(): NodeJS.Timeout {
    let lastOk = Date.now();
    const timer = setInterval(() => {
      this.locks.renew(this.box.address).then(
        (ok) => {
          if (ok) lastOk = Date.now();
          else this.loseLock();
        },
        // Redis unreachable: the lock may expire and be taken elsewhere; stop before it can have been.
        () => (Date.now() - lastOk > this.ttlMs * 0.8 ? this.loseLock() : undefined),
      );
    }, Math.max(100, Math.floor(this.ttlMs / 3)));
    timer.unref();
    return timer;
  }

  private loseLock(): void {
    if (this.lost) return;
    this.lost = true;
    this.interrupt?.();
    this.client?.close();
  }

  private async holdAndWatch(): Promise<void> {
    await mailboxStarting(this.ctx, this.box.address, this.imap.inbox, this.holderId).catch(() => {});
    while (!this.stopped && !this.lost) {
      try {
        await this.session();
      } catch (err) {
        if (this.stopped || this.lost) return;
        this.failures = failuresAfter(this.failures, this.connectedAt === null ? null : Date.now() - this.connectedAt);
        this.connectedAt = null;
        const delay = reconnectDelayMs(this.failures, this.backoff);
        const what = err instanceof MailboxError ? err.message : describeMailboxError(err, 'imap', { host: this.imap.host, port: this.imap.port, user: this.imap.user }).message;
        await mailboxFailed(this.ctx, this.box.address, what, delay).catch((e: unknown) => console.error(`[mailbox ${this.box.address}] ${what} (and its status could not be saved: ${(e as Error).message})`));
        await this.sleep(delay);
      }
    }
  }

  /** One connection, from login until it drops, fails, or the watch stops. */
  private async session(): Promise<void> {
    const s = this.imap;
    const address = this.box.address;
    const client = await connectImap(address, s, { configDir: this.ctx.config.dir });
    this.client = client;
    let poll: NodeJS.Timeout | undefined;
    try {
      if (this.stopped || this.lost) return;
      const readOnly = !(s.markSeen || s.moveTo);
      const box = await client.mailboxOpen(s.inbox, { readOnly }).catch((err: unknown) => {
        throw new MailboxError('folder', 'imap', `IMAP ${s.host}:${s.port}: cannot open the inbox folder "${s.inbox}" (${(err as { responseText?: string }).responseText ?? (err as Error).message})`);
      });
      const uidValidity = box.uidValidity;
      const { lastUid } = await checkpointFor(this.ctx.db, address, s.inbox, uidValidity, () => this.startingPoint(client, box.uidNext));
      let last = lastUid;
      await mailboxConnected(this.ctx, address, s.inbox, this.holderId);
      this.connectedAt = Date.now();

      let failed: (err: unknown) => void = () => {};
      const ended = new Promise<void>((resolve, reject) => {
        failed = reject;
        this.interrupt = resolve;
        client.once('close', () => reject(new MailboxError('connect', 'imap', `IMAP ${s.host}:${s.port}: the server closed the connection`)));
      });
      // Stopped (or the lock lost) while connecting, before there was an interrupt to call: end now.
      if (this.stopped || this.lost) this.interrupt?.();
      // One catch-up at a time; a wake-up during one runs another after it.
      let running = false;
      let again = false;
      const catchUp = async () => {
        for (;;) {
          const found = await client.search({ uid: `${last + 1}:*` }, { uid: true });
          // `N:*` names the last message even when N is past it: keep only the new ones.
          const uids = (found || []).filter((u) => u > last).sort((a, b) => a - b);
          if (!uids.length) return;
          for (let i = 0; i < uids.length; i += BATCH) {
            const batch = uids.slice(i, i + BATCH);
            const fetched = await client.fetchAll(batch.join(','), { uid: true, source: { start: 0, maxLength: MAX_MESSAGE_BYTES }, internalDate: true }, { uid: true });
            for (const m of fetched.sort((a, b) => a.uid - b.uid)) {
              if (this.stopped || this.lost) return;
              await this.record({ mailbox: address, uidValidity, uid: m.uid, raw: m.source ?? Buffer.alloc(0), arrivedAt: m.internalDate ? new Date(m.internalDate) : null });
              last = m.uid;
            }
            if (s.markSeen) await client.messageFlagsAdd(batch.join(','), ['\\Seen'], { uid: true });
            if (s.moveTo) await client.messageMove(batch.join(','), s.moveTo, { uid: true });
          }
        }
      };
      const wake = () => {
        if (running) return void (again = true);
        running = true;
        void (async () => {
          try {
            do {
              again = false;
              await catchUp();
            } while (again && !this.stopped && !this.lost);
          } catch (err) {
            failed(err);
          } finally {
            running = false;
          }
        })();
      };
      client.on('exists', wake);
      poll = setInterval(wake, s.pollMs);
      poll.unref();
      wake();
      await ended;
    } finally {
      clearInterval(poll);
      this.interrupt = null;
      this.client = null;
      client.removeAllListeners('exists');
      if (this.killed) client.close();
      else await closeImap(client);
      client.on('error', () => {});
    }
  }

  /**
   * Records one message. A failure is retried (the session ends and reconnects with backoff), but one that
   * keeps failing on the same message, for a reason that is not the database or the network being away,
   * passes that message over after a few tries, so one message nurture cannot handle never blinds it to
   * every reply after it.
   */
  private async record(m: Parameters<typeof receiveMailboxMessage>[1]): Promise<void> {
    try {
      await receiveMailboxMessage(this.ctx, m);
      this.stuck = null;
    } catch (err) {
      if (isTransient(err)) throw err;
      const same = this.stuck && this.stuck.uidValidity === m.uidValidity && this.stuck.uid === m.uid;
      this.stuck = { uidValidity: m.uidValidity, uid: m.uid, failures: same ? this.stuck!.failures + 1 : 1 };
      if (this.stuck.failures < MAX_MESSAGE_FAILURES) throw err;
      await passOverMailboxMessage(this.ctx, m, `failed ${this.stuck.failures} times: ${(err as Error).message}`);
      this.stuck = null;
    }
  }

  /**
   * Where a first watch (or one after the server renumbered the folder) starts: the mail that arrived within
   * the inbound match window, so replies to recent messages are not missed and years of old mail are not
   * read; recording stays once-only by the mail's Message-ID. IMAP dates are the server's real ones.
   */
  private async startingPoint(client: ImapFlow, uidNext: number): Promise<number> {
    const windowMs = parseDuration(this.ctx.config.funnel.inbound?.matchWindow ?? '30d');
    const recent = await client.search({ since: new Date(Date.now() - windowMs) }, { uid: true });
    const first = (recent || []).reduce((a, b) => Math.min(a, b), Infinity);
    return Number.isFinite(first) ? first - 1 : uidNext - 1;
  }

  /** Waits `ms`, or less when the watch is stopped. */
  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.interrupt = done;
    });
  }
}
