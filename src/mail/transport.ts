// One pooled SMTP transport per process, never one per send. It also tells a send whether the message
// itself began to go over the wire: nodemailer reports every dropped connection alike ("Connection closed
// unexpectedly", command CONN), but a drop before DATA is safe to retry and one during DATA is not.
// And it lets a send claim its message only once a pooled connection is its own: a message waiting for
// a connection is still queued, never `sending` (reconcile would call it uncertain before it was handed over).
import { Transform, type Readable } from 'node:stream';
import nodemailer, { type SentMessageInfo, type Transporter } from 'nodemailer';
import DKIM from 'nodemailer/lib/dkim';
import type Mail from 'nodemailer/lib/mailer/index.js';

/** Where a send got to: `data` once the relay said 354 and the message started to flow. */
export type SendPhase = 'before_data' | 'data';

export class SendError extends Error {
  constructor(readonly cause: unknown, readonly phase: SendPhase | null) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.name = 'SendError';
  }
}

const PROBE = 'nurtureSendProbe';
interface Probe {
  /** The stream plugin saw this message: the phase below is known. */
  armed: boolean;
  phase: SendPhase;
}

/** SMTP_POOL_SIZE's default. */
export const DEFAULT_SMTP_POOL_SIZE = 5;

/** A counting semaphore, first come first served: one slot per pooled connection. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  closed = false;
  constructor(size: number) {
    this.free = size;
  }
  async take(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    if (this.closed) throw new SendError(new Error('the SMTP transport was closed (shutting down)'), 'before_data');
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
  close(): void {
    this.closed = true;
    for (const next of this.waiting.splice(0)) next();
  }
}

const slotsOf = new WeakMap<Transporter, Slots>();

export function createTransport(smtpUrl: string, opts: { poolSize?: number } = {}): Transporter {
  const poolSize = opts.poolSize ?? DEFAULT_SMTP_POOL_SIZE;
  const url = new URL(smtpUrl);
  const secure = url.protocol === 'smtps:';
  const transport = nodemailer.createTransport({
    pool: true,
    maxConnections: poolSize,
    host: url.hostname,
    port: Number(url.port || (secure ? 465 : 587)),
    secure,
    auth: url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : undefined,
    // A local catcher or relay on loopback speaks plain SMTP; anything else must offer STARTTLS when asked.
    ignoreTLS: url.searchParams.get('tls') === 'off',
    requireTLS: url.searchParams.get('tls') === 'require',
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 60_000,
  });
  transport.use('stream', (mail, done) => {
    const data = mail.data as Mail.Options & { [PROBE]?: Probe };
    const probe = data[PROBE];
    if (!probe || !mail.message) return done();
    probe.armed = true;
    // The SMTP connection pipes the outermost stream only after DATA's 354: its first resume is the
    // moment the message starts to flow. A DKIM signer reads the whole message before that, so when a
    // message is signed we sign it here, inside, and stay outermost.
    const dkim = data.dkim;
    delete data.dkim;
    mail.message.processFunc((input: Readable) => {
      const signed: Readable = dkim ? new DKIM(dkim as ConstructorParameters<typeof DKIM>[0]).sign(input) : input;
      const out = whole(signed);
      out.once('resume', () => (probe.phase = 'data'));
      return out;
    });
    done();
  });
  slotsOf.set(transport, new Slots(poolSize));
  return transport;
}

/**
 * The message as one chunk. Streamed as built, a MIME tree reaches the connection in one small piece per
 * header line and encoded line group, each its own socket write (a system call, and a wake-up for the
 * relay); whole, it is written in a few large ones. The tree is built while the envelope is sent (the
 * input is read at once, the output only after 354), so the connection doesn't wait for it. Cheaper than
 * building the bytes first and handing them over as a raw message, which nodemailer composes and streams
 * a second time.
 */
function whole(input: Readable): Readable {
  const chunks: Buffer[] = [];
  const out = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
    flush(done) {
      done(null, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    },
  });
  input.once('error', (err) => out.destroy(err));
  return input.pipe(out);
}

/**
 * Closes the transport now, connections in the middle of a delivery included (a relay that hangs holds
 * them for minutes): those sends fail at once, with the phase they reached, and sends still waiting for
 * a connection fail before they claim anything.
 */
export function forceClose(transport: Transporter): void {
  slotsOf.get(transport)?.close();
  (transport as { close(o?: { force?: boolean }): void }).close({ force: true });
}

/**
 * Sends one message; on failure throws a SendError that says whether the message had begun to flow
 * (`data`), had certainly not (`before_data`), or — on a transport without the probe — null.
 *
 * With `claim`, the send first waits for a pooled connection of its own (never more messages in hand
 * than connections, so none waits in nodemailer's queue), then runs `claim` — the caller marks the
 * message `sending` there, as its SMTP transaction begins and before any byte of it reaches the relay —
 * and sends only when the claim holds. Returns null when it doesn't.
 */
export async function sendTracked(transport: Transporter, options: Mail.Options): Promise<SentMessageInfo>;
export async function sendTracked(transport: Transporter, options: Mail.Options, claim: () => Promise<boolean>): Promise<SentMessageInfo | null>;
export async function sendTracked(transport: Transporter, options: Mail.Options, claim?: () => Promise<boolean>): Promise<SentMessageInfo | null> {
  const release = (await slotsOf.get(transport)?.take()) ?? (() => {});
  try {
    if (claim && !(await claim())) return null;
    const probe: Probe = { armed: false, phase: 'before_data' };
    try {
      return await transport.sendMail({ ...options, [PROBE]: probe } as Mail.Options);
    } catch (err) {
      throw new SendError(err, probe.armed ? probe.phase : null);
    }
  } finally {
    release();
  }
}
