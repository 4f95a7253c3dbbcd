import { createServer, type Server } from 'node:http';
import { SMTPServer } from 'smtp-server';
import { DevServiceError } from './errors.js';
import { openMailStore, type CaughtMessage } from './mail-store.js';
import { mailWebHandler } from './mail-web.js';
import { freePort } from './ports.js';

export type { CaughtMessage, MessageParts } from './mail-store.js';

export interface MailCatcherOptions {
  dir: string;
  /** Fixed ports; without them 1025 / 8025 are used when free, else any free port. */
  smtpPort?: number;
  httpPort?: number;
  host?: string;
  /** Largest message accepted, in bytes (default 25 MB). */
  maxMessageBytes?: number;
}

export interface MailCatcher {
  /** smtp://host:port — give this to nurture as SMTP_URL. */
  url: string;
  webUrl: string;
  dir: string;
  /** Everything caught so far, newest first. */
  messages(): CaughtMessage[];
  /** Resolves with the first message (already caught or arriving) that matches. */
  waitForMessage(match?: (message: CaughtMessage) => boolean, timeoutMs?: number): Promise<CaughtMessage>;
  stop(): Promise<void>;
}

const DEFAULT_MAX_MESSAGE_BYTES = 25 * 1024 * 1024;

/** A local SMTP server that accepts every message and keeps it as an .eml, with a page to read them. */
export async function startMailCatcher(options: MailCatcherOptions): Promise<MailCatcher> {
  const host = options.host ?? '127.0.0.1';
  const store = await openMailStore(options.dir);
  const waiters = new Set<(message: CaughtMessage) => void>();
  const maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;

  const smtp = new SMTPServer({
    secure: false,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    size: maxBytes,
    disableReverseLookup: true,
    banner: 'nurture mail catcher',
    // Pooled clients keep connections open; don't let them hold up stop().
    closeTimeout: 1_000,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.once('error', (error) => callback(error));
      stream.once('end', () => {
        if (stream.sizeExceeded) {
          return callback(Object.assign(new Error(`Message exceeds ${maxBytes} bytes`), { responseCode: 552 }));
        }
        const envelope = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
        };
        // 250 only once the message is on disk, as a real relay would.
        store.save(Buffer.concat(chunks), envelope).then(
          (message) => {
            callback(null, `Caught as ${message.id}`);
            for (const notify of waiters) notify(message);
          },
          (error: Error) => callback(Object.assign(error, { responseCode: 451 })),
        );
      });
    },
  });
  smtp.on('error', () => {
    // Per-connection errors (a client hanging up) are not the catcher's failure; listen errors are
    // reported by listen() below.
  });

  const smtpPort = options.smtpPort ?? (await freePort(1025));
  await listen(smtp.server, smtpPort, host, 'SMTP');
  const url = `smtp://${host}:${smtpPort}`;

  const web = createServer(mailWebHandler(store, url));
  const httpPort = options.httpPort ?? (await freePort(8025));
  try {
    await listen(web, httpPort, host, 'web page');
  } catch (error) {
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
    throw error;
  }

  let stopping: Promise<void> | undefined;
  return {
    url,
    webUrl: `http://${host}:${httpPort}`,
    dir: store.dir,
    messages: () => store.list(),
    waitForMessage: (match = () => true, timeoutMs = 10_000) => {
      const caught = store.list().find(match);
      if (caught) return Promise.resolve(caught);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`No matching message reached the mail catcher within ${timeoutMs} ms`));
        }, timeoutMs);
        const check = (message: CaughtMessage) => {
          if (!match(message)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(message);
        };
        waiters.add(check);
      });
    },
    stop: () =>
      (stopping ??= Promise.all([
        new Promise<void>((resolve) => smtp.close(() => resolve())),
        new Promise<void>((resolve) => {
          web.close(() => resolve());
          web.closeAllConnections();
        }),
      ]).then(() => undefined)),
  };
}

function listen(server: Server | SMTPServer['server'], port: number, host: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(
        new DevServiceError(
          'MAIL_CATCHER_START_FAILED',
          `The mail catcher's ${what} could not listen on ${host}:${port} (${error.code ?? error.message}). ` +
            'Choose another port, or set SMTP_URL to use your own SMTP server.',
          { cause: error },
        ),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.removeListener('error', onError);
      resolve();
    });
  });
}
