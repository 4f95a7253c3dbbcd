// A relay that misbehaves on cue, for delivery tests: per-recipient replies at RCPT TO (451 twice, then
// 250; 550 5.7.1 …), a connection dropped in the middle of DATA, and a DKIM check of what arrived — all
// in-process, real SMTP on a real socket. Use it as the context's transport target (see delivery tests).
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { Socket } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import type { CaughtMail } from './harness.js';

export type Reply = { code: number; message: string };

export interface FaultySmtp {
  url: string;
  mails: CaughtMail[];
  /** RCPT TO answer for an address on its n-th try (from 1); null accepts. */
  rcpt: (address: string, n: number) => Reply | null;
  /** What to do at the end of DATA for these recipients on the n-th DATA of the first one: accept, drop the connection, or reply. */
  data: (rcpts: string[], n: number) => 'accept' | 'drop' | Reply;
  /** RCPT TO tries per address so far. */
  rcptTries: Map<string, number>;
  close(): Promise<void>;
}

/** An rcpt rule: `reply` for the first `times` tries of `address`, then accept. */
export function failFirst(address: string, times: number, reply: Reply): FaultySmtp['rcpt'] {
  return (a, n) => (a === address && n <= times ? reply : null);
}

export async function startFaultySmtp(): Promise<FaultySmtp> {
  const mails: CaughtMail[] = [];
  const rcptTries = new Map<string, number>();
  const dataTries = new Map<string, number>();
  const sockets = new Map<number, Socket>();
  const sink: FaultySmtp = { url: '', mails, rcpt: () => null, data: () => 'accept', rcptTries, close: async () => {} };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    onRcptTo(address, _session, cb) {
      const n = (rcptTries.get(address.address) ?? 0) + 1;
      rcptTries.set(address.address, n);
      const r = sink.rcpt(address.address, n);
      if (!r) return cb();
      cb(Object.assign(new Error(r.message), { responseCode: r.code }));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const rcpts = session.envelope.rcptTo.map((r) => r.address);
        const first = rcpts[0] ?? '';
        const n = (dataTries.get(first) ?? 0) + 1;
        dataTries.set(first, n);
        const what = sink.data(rcpts, n);
        if (what === 'drop') {
          // The relay has the whole message and vanishes before answering: did it take it? Nobody knows.
          sockets.get(session.remotePort)?.destroy();
          return;
        }
        if (what !== 'accept') return cb(Object.assign(new Error(what.message), { responseCode: what.code }));
        const raw = Buffer.concat(chunks).toString('utf8');
        simpleParser(raw).then((parsed) => {
          mails.push({ envelopeTo: rcpts, raw, parsed });
          cb(null, 'Ok: queued as FAULTY');
        }, cb);
      });
    },
  });
  server.server.on('connection', (s: Socket) => {
    if (s.remotePort !== undefined) sockets.set(s.remotePort, s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as { port: number }).port;
  sink.url = `smtp://127.0.0.1:${port}?tls=off`;
  sink.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets.values()) s.destroy();
      server.close(() => resolve());
    });
  return sink;
}

export interface DkimCheck {
  ok: boolean;
  bodyHashOk: boolean;
  tags: Record<string, string>;
}

/**
 * Verifies the (first) DKIM-Signature of a raw message the way a receiver does (RFC 6376, relaxed/relaxed
 * and simple canonicalisation, rsa-sha256 or ed25519-sha256), against the public key given instead of DNS.
 */
export function verifyDkim(raw: string, publicKey: KeyObject | string): DkimCheck {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  const text = raw.replace(/\r?\n/g, '\r\n');
  const split = text.indexOf('\r\n\r\n');
  const head = split < 0 ? text : text.slice(0, split + 2);
  const body = split < 0 ? '' : text.slice(split + 4);
  const fields: string[] = [];
  for (const line of head.split('\r\n')) {
    if (!line) continue;
    if (/^[ \t]/.test(line) && fields.length) fields[fields.length - 1] += `\r\n${line}`;
    else fields.push(line);
  }
  const nameOf = (f: string) => f.slice(0, f.indexOf(':')).trim().toLowerCase();
  const sigField = fields.find((f) => nameOf(f) === 'dkim-signature');
  if (!sigField) return { ok: false, bodyHashOk: false, tags: {} };
  const tags: Record<string, string> = {};
  for (const part of sigField.slice(sigField.indexOf(':') + 1).split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    tags[part.slice(0, eq).trim()] = part.slice(eq + 1).replace(/\s+/g, ' ').trim();
  }
  const [headerCanon, bodyCanon] = (tags.c ?? 'simple/simple').split('/');
  const relaxedBody = (b: string) => {
    const lines = b.split('\r\n').map((l) => l.replace(/[ \t]+/g, ' ').replace(/ $/, ''));
    while (lines.length && lines[lines.length - 1] === '') lines.pop();
    return lines.length ? `${lines.join('\r\n')}\r\n` : '';
  };
  const simpleBody = (b: string) => `${b.replace(/(\r\n)*$/, '')}\r\n`;
  const canonBody = (bodyCanon ?? 'simple') === 'relaxed' ? relaxedBody(body) : simpleBody(body);
  const hash = (tags.a ?? 'rsa-sha256').endsWith('sha1') ? 'sha1' : 'sha256';
  const bh = createHash(hash).update(canonBody).digest('base64');
  const bodyHashOk = bh === (tags.bh ?? '').replace(/\s+/g, '');

  const canonHeader = (f: string) =>
    headerCanon === 'relaxed'
      ? `${nameOf(f)}:${f.slice(f.indexOf(':') + 1).replace(/\r\n/g, '').replace(/[ \t]+/g, ' ').trim()}`
      : f;
  const used = new Set<number>();
  const signed: string[] = [];
  for (const name of (tags.h ?? '').split(':').map((n) => n.trim().toLowerCase())) {
    // The last instance not yet used, bottom-up (RFC 6376 §5.4.2); a missing one signs as empty.
    for (let i = fields.length - 1; i >= 0; i--) {
      if (!used.has(i) && nameOf(fields[i]!) === name) {
        used.add(i);
        signed.push(`${canonHeader(fields[i]!)}\r\n`);
        break;
      }
    }
  }
  const withoutB = sigField.replace(/(\bb=)[^;]*/, '$1');
  const data = Buffer.from(signed.join('') + canonHeader(withoutB));
  const signature = Buffer.from((tags.b ?? '').replace(/\s+/g, ''), 'base64');
  const ok = bodyHashOk && (key.asymmetricKeyType === 'ed25519' ? verify(null, createHash('sha256').update(data).digest(), key, signature) : verify(hash, data, key, signature));
  return { ok, bodyHashOk, tags };
}
