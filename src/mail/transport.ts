// One pooled SMTP transport per process, never one per send. It also tells a send whether the message
// itself began to go over the wire: nodemailer reports every dropped connection alike ("Connection closed
// unexpectedly", command CONN), but a drop before DATA is safe to retry and one during DATA is not.
import type { Readable } from 'node:stream';
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

export function createTransport(smtpUrl: string): Transporter {
  const url = new URL(smtpUrl);
  const secure = url.protocol === 'smtps:';
  const transport = nodemailer.createTransport({
    pool: true,
    maxConnections: 5,
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
      const out: Readable = dkim ? new DKIM(dkim as ConstructorParameters<typeof DKIM>[0]).sign(input) : input;
      out.once('resume', () => (probe.phase = 'data'));
      return out;
    });
    done();
  });
  return transport;
}

/**
 * Sends one message; on failure throws a SendError that says whether the message had begun to flow
 * (`data`), had certainly not (`before_data`), or — on a transport without the probe — null.
 */
export async function sendTracked(transport: Transporter, options: Mail.Options): Promise<SentMessageInfo> {
  const probe: Probe = { armed: false, phase: 'before_data' };
  try {
    return await transport.sendMail({ ...options, [PROBE]: probe } as Mail.Options);
  } catch (err) {
    throw new SendError(err, probe.armed ? probe.phase : null);
  }
}
