// `nurture messages [--uncertain | --status S] [--json]`: messages by status, with what is known about each.
// `nurture messages release <id> --resend|--mark-sent`: a person's decision about an uncertain message.
import { connectDatabase } from '../db/client.js';
import { createQueues, redisConnection } from '../queue/index.js';
import { listMessages, MESSAGE_STATUSES, releaseUncertain, type MessageStatus, type MessageSummary, type ReleaseDecision } from '../usecases/messages.js';

export interface MessagesListOptions {
  databaseUrl: string;
  status: MessageStatus;
  json: boolean;
  limit?: number;
  write?: (line: string) => void;
}

export interface MessagesReleaseOptions {
  databaseUrl: string;
  redisUrl: string;
  /** REDIS_CLUSTER. */
  redisCluster?: boolean;
  queuePrefix: string;
  id: string;
  decision: ReleaseDecision;
  write?: (line: string) => void;
}

export function parseStatus(s: string): MessageStatus {
  if (!(MESSAGE_STATUSES as readonly string[]).includes(s)) throw new Error(`unknown status "${s}": one of ${MESSAGE_STATUSES.join(', ')}`);
  return s as MessageStatus;
}

const HEAD = ['id', 'lead', 'account', 'sequence/step', 'since', 'attempts', "relay's last words"];

export function formatMessageTable(rows: MessageSummary[]): string[] {
  const cells = rows.map((r) => [
    r.id,
    r.email,
    r.accountName ?? '-',
    `${r.sequenceId}/${r.stepId}`,
    (r.sendingAt ?? r.queuedAt).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    String(r.attempts),
    (r.lastReply ?? '-').replace(/\s+/g, ' ').slice(0, 120),
  ]);
  const widths = HEAD.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i]!))).join('  ');
  return [line(HEAD), ...cells.map(line)];
}

export async function messagesList(o: MessagesListOptions): Promise<number> {
  const write = o.write ?? ((l: string) => console.log(l));
  const database = connectDatabase(o.databaseUrl, { max: 2 });
  try {
    const rows = await listMessages(database, { status: o.status, ...(o.limit ? { limit: o.limit } : {}) });
    if (o.json) rows.forEach((r) => write(JSON.stringify(r)));
    else if (!rows.length) write(`no ${o.status} messages`);
    else {
      formatMessageTable(rows).forEach(write);
      if (o.status === 'uncertain') write(`\n${rows.length} uncertain: check the relay's logs, then  nurture messages release <id> --resend | --mark-sent`);
    }
    return 0;
  } finally {
    await database.close();
  }
}

export async function messagesRelease(o: MessagesReleaseOptions): Promise<number> {
  const write = o.write ?? ((l: string) => console.log(l));
  const database = connectDatabase(o.databaseUrl, { max: 2 });
  const queues = createQueues({ connection: redisConnection(o.redisUrl, { cluster: o.redisCluster }), prefix: o.queuePrefix });
  try {
    const m = await releaseUncertain({ db: database.db, queues, now: () => new Date() }, o.id, o.decision, 'the CLI');
    write(o.decision === 'resend' ? `${m.id} to ${m.email}: queued again (same Message-ID <${m.messageId}>)` : `${m.id} to ${m.email}: marked sent`);
    return 0;
  } finally {
    await queues.close();
    await database.close();
  }
}
