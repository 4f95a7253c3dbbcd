import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';

/** One message the catcher received, as listed; the parts are read from its .eml on demand. */
export interface CaughtMessage {
  id: string;
  /** Absolute path of the stored .eml. */
  file: string;
  receivedAt: string;
  /** SMTP envelope: MAIL FROM ('' for a null sender) and RCPT TO. */
  envelopeFrom: string;
  envelopeTo: string[];
  /** Headers as written. */
  from: string;
  to: string;
  subject: string;
  messageId: string | null;
  size: number;
  hasHtml: boolean;
  hasText: boolean;
}

export interface MessageParts {
  html: string | null;
  text: string | null;
}

type IndexEntry = Omit<CaughtMessage, 'file'> & { file: string /* name inside dir */ };

const INDEX_FILE = 'index.jsonl';
const CAUGHT_NAME = /^(.+)-([0-9a-f]{8})\.eml$/;

/**
 * The catcher's folder: one `<timestamp>-<id>.eml` per message plus `index.jsonl`, a line per message, so a
 * restart lists old mail without parsing every file. An .eml the index lacks (dropped in by hand, or saved
 * just before a crash) is parsed and added on open.
 */
export async function openMailStore(dir: string) {
  const root = path.resolve(dir);
  await mkdir(root, { recursive: true });
  const byId = new Map<string, CaughtMessage>();
  for (const message of await loadMessages(root)) byId.set(message.id, message);

  return {
    dir: root,
    list(): CaughtMessage[] {
      return [...byId.values()].sort(newestFirst);
    },
    get(id: string): CaughtMessage | undefined {
      return byId.get(id);
    },
    async save(raw: Buffer, envelope: { from: string; to: string[] }, receivedAt = new Date()): Promise<CaughtMessage> {
      const id = randomBytes(4).toString('hex');
      const name = `${fileTimestamp(receivedAt)}-${id}.eml`;
      // Write then rename, so a crash never leaves a half-written .eml for the next start to list.
      const partial = path.join(root, `.${name}.partial`);
      await writeFile(partial, raw);
      await rename(partial, path.join(root, name));
      const entry = await summarize(raw, { id, name, receivedAt, envelope });
      await appendFile(path.join(root, INDEX_FILE), `${JSON.stringify(entry)}\n`);
      const message = withPath(root, entry);
      byId.set(id, message);
      return message;
    },
    async raw(id: string): Promise<Buffer | undefined> {
      const message = byId.get(id);
      return message ? readFile(message.file).catch(() => undefined) : undefined;
    },
    async parts(id: string): Promise<MessageParts | undefined> {
      const message = byId.get(id);
      if (!message) return undefined;
      const raw = await readFile(message.file).catch(() => undefined);
      if (!raw) return undefined;
      const parsed = await simpleParser(raw);
      return { html: typeof parsed.html === 'string' ? parsed.html : null, text: parsed.text ?? null };
    },
  };
}

export type MailStore = Awaited<ReturnType<typeof openMailStore>>;

async function loadMessages(root: string): Promise<CaughtMessage[]> {
  const names = new Set((await readdir(root)).filter((name) => name.endsWith('.eml')));
  const indexed = await readIndex(root);
  const kept = indexed.filter((entry) => names.has(entry.file));
  const keptNames = new Set(kept.map((entry) => entry.file));
  const added: IndexEntry[] = [];
  for (const name of names) {
    if (keptNames.has(name)) continue;
    const file = path.join(root, name);
    const [raw, info] = await Promise.all([readFile(file), stat(file)]);
    const match = CAUGHT_NAME.exec(name);
    const id = match?.[2] ?? createHash('sha1').update(name).digest('hex').slice(0, 8);
    added.push(await summarize(raw, { id, name, receivedAt: info.mtime, envelope: { from: '', to: [] } }));
  }
  if (added.length > 0 || kept.length !== indexed.length) {
    const lines = [...kept, ...added].map((entry) => `${JSON.stringify(entry)}\n`).join('');
    await writeFile(path.join(root, INDEX_FILE), lines);
  }
  return [...kept, ...added].map((entry) => withPath(root, entry));
}

async function readIndex(root: string): Promise<IndexEntry[]> {
  const text = await readFile(path.join(root, INDEX_FILE), 'utf8').catch(() => '');
  const entries: IndexEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      entries.push(JSON.parse(line) as IndexEntry);
    } catch {
      // A line torn by a crash; its .eml is re-parsed as unindexed.
    }
  }
  return entries;
}

async function summarize(
  raw: Buffer,
  at: { id: string; name: string; receivedAt: Date; envelope: { from: string; to: string[] } },
): Promise<IndexEntry> {
  const parsed = await simpleParser(raw).catch((): ParsedMail | undefined => undefined);
  return {
    id: at.id,
    file: at.name,
    receivedAt: at.receivedAt.toISOString(),
    envelopeFrom: at.envelope.from,
    envelopeTo: at.envelope.to,
    from: addressText(parsed?.from),
    to: addressText(parsed?.to),
    subject: parsed ? (parsed.subject ?? '') : '(could not be parsed)',
    messageId: parsed?.messageId ?? null,
    size: raw.length,
    hasHtml: typeof parsed?.html === 'string',
    hasText: typeof parsed?.text === 'string',
  };
}

function addressText(address: AddressObject | AddressObject[] | undefined): string {
  if (!address) return '';
  return (Array.isArray(address) ? address : [address]).map((a) => a.text).join(', ');
}

function withPath(root: string, entry: IndexEntry): CaughtMessage {
  return { ...entry, file: path.join(root, entry.file) };
}

function fileTimestamp(date: Date): string {
  // ISO 8601 with ':' and '.' swapped for '-', which file systems (Windows) and shells accept.
  return date.toISOString().replace(/[:.]/g, '-');
}

function newestFirst(a: CaughtMessage, b: CaughtMessage): number {
  return b.receivedAt.localeCompare(a.receivedAt) || b.file.localeCompare(a.file);
}
