#!/usr/bin/env node
// The nurture command line. Each command parses its flags and calls one function; nothing decides here.
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/issues.js';
import { databaseUrlWith, readEnv } from '../config/env.js';
import { readRuntimeFile } from './runtimeFile.js';
import { jsonSchemaOf, SCHEMA_FILES } from '../config/jsonSchema.js';

// Each command's module loads only when that command runs: `nurture help` must not wait for BullMQ,
// MJML and drizzle to load.
const lazy =
  <A extends unknown[], R>(load: () => Promise<(...args: A) => R>) =>
  async (...args: A) =>
    await (await load())(...args);
const logs = lazy(async () => (await import('./logs.js')).logs);
const start = lazy(async () => (await import('./start.js')).start);
const validate = lazy(async () => (await import('./validate.js')).validate);
const preview = lazy(async () => (await import('./preview.js')).preview);
const simulateCommand = lazy(async () => (await import('./simulate.js')).simulateCommand);
const statsCommand = lazy(async () => (await import('./stats.js')).statsCommand);
const enrollCommand = lazy(async () => (await import('./enroll.js')).enrollCommand);
const exitCommand = lazy(async () => (await import('./enroll.js')).exitCommand);
const releaseCommand = lazy(async () => (await import('./enroll.js')).releaseCommand);
const fanoutCommand = lazy(async () => (await import('./fanout.js')).fanoutCommand);
const fanoutStatus = lazy(async () => (await import('./fanout.js')).fanoutStatus);
const dkim = lazy(async () => (await import('./dkim.js')).dkim);
const importCommand = lazy(async () => (await import('./people.js')).importCommand);
const exportCommand = lazy(async () => (await import('./people.js')).exportCommand);
const eraseCommand = lazy(async () => (await import('./people.js')).eraseCommand);
const mailboxTest = lazy(async () => (await import('./mailbox.js')).mailboxTest);

const HELP = `nurture — relationship-first email nurture

  nurture start                 API + workers in one process; embedded Postgres, Redis and mail
                                catcher for whichever of DATABASE_URL, REDIS_URL, SMTP_URL is unset
  nurture api                   the HTTP API alone (needs DATABASE_URL, REDIS_URL)
  nurture worker                the workers alone; run as many as you like against one Redis
  nurture validate [--plan]     check config/ and templates/; exits 1 with file:line:column messages;
                                --plan: what the change will do to enrollments in flight
  nurture enroll SEQUENCE --lead EMAIL   enroll a known lead in a sequence now
  nurture exit --lead EMAIL [--sequence ID]   take a lead out of its sequences by hand
  nurture release --lead EMAIL [--step ID] --reason TEXT
                                send a step deferred to its window, a cap or a return date now
                                (never past a value-first gate); the reason goes in the log
  nurture import FILE.csv [--mapping FILE.yaml] [--dry-run] [--no-enroll] [--report FILE] [--batch N]
                                upsert leads from a CSV (columns: email, firstName, persona, stage, owner.email,
                                account.name, attributes.X…; a mapping file renames a CRM's columns, see examples/);
                                rejected rows go to FILE.csv.rejected.csv with their line numbers
  nurture export --lead EMAIL [--out FILE]   everything held about a person, as one JSON document
  nurture erase --lead EMAIL    erase a person everywhere; a salted hash keeps them from ever being mailed again
  nurture fanout SEQUENCE       send a segmented sequence to everyone already in its audience
  nurture fanout --status [--json] [-n N]
                                each recent fan-out: sequence, when it started, leads done of its audience, status
  nurture logs [-f] [--json] [--lead EMAIL] [--sequence ID] [--kind KIND,…] [-n N]
                                delivery and engagement log, one line per event
  nurture simulate SEQUENCE --lead LEAD.yaml [--events EVENTS.yaml] [--start TIME] [--json]
                                run a sequence for a scripted lead on a virtual clock and print the timeline
  nurture preview TEMPLATE --lead FILE|EMAIL [--out DIR]
                                render a template for a lead: subject, preheader, HTML and text
  nurture messages [--uncertain | --status S] [--json] [-n N]
                                messages by status (uncertain unless --status says another): lead,
                                sequence/step, since when, the relay's last words
  nurture messages release ID --resend|--mark-sent
                                settle an uncertain message: a person decides, never nurture
  nurture dkim DOMAIN           the DNS TXT record to publish for the domain's DKIM key
  nurture dkim generate DOMAIN [--selector S] [--force]
                                write a new 2048-bit key to config/keys/, print the funnel.yaml
                                lines and the DNS TXT record for it
  nurture mailbox test OWNER [--json]
                                connect to a rep's mailbox (mailboxes.yaml) as nurture would: says which step
                                failed (password reference, DNS, connection, TLS, login, folder)
  nurture stats [--since 30d|DATE] [--sequence ID] [--accounts N] [--json]
                                per sequence and step, persona, stage and account: people, not machines
  nurture schema funnel|sequence|mailboxes  print the JSON Schema of a YAML file (for editors)
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      await start({ api: true, worker: true, embedded: true });
      return -1;
    case 'api':
      await start({ api: true, worker: false, embedded: false });
      return -1;
    case 'worker':
      await start({ api: false, worker: true, embedded: false });
      return -1;
    case 'validate': {
      const env = readEnv();
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string' }, templates: { type: 'string' }, plan: { type: 'boolean', default: false } } });
      return validate({ config: values.config ?? env.NURTURE_CONFIG_DIR, templates: values.templates ?? env.NURTURE_TEMPLATES_DIR, ...(values.plan ? { plan: databaseUrlOf(env) } : {}) });
    }
    case 'logs': {
      const { values } = parseArgs({
        args: rest,
        options: {
          follow: { type: 'boolean', short: 'f', default: false },
          json: { type: 'boolean', default: false },
          lead: { type: 'string' },
          sequence: { type: 'string' },
          kind: { type: 'string' },
          n: { type: 'string', default: '50' },
        },
      });
      const limit = count('-n', values.n!);
      const env = readEnv();
      await logs({
        databaseUrl: databaseUrlOf(env),
        follow: values.follow!,
        json: values.json!,
        ...(values.lead ? { lead: values.lead } : {}),
        ...(values.sequence ? { sequence: values.sequence } : {}),
        ...(values.kind ? { kinds: values.kind.split(',') } : {}),
        limit,
      });
      return 0;
    }
    case 'simulate': {
      const env = readEnv();
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { lead: { type: 'string' }, events: { type: 'string' }, start: { type: 'string' }, json: { type: 'boolean', default: false }, config: { type: 'string' }, templates: { type: 'string' } },
      });
      if (!positionals[0] || !values.lead) throw new Error('usage: nurture simulate <sequence> --lead lead.yaml [--events events.yaml] [--start TIME] [--json]');
      return simulateCommand({
        sequenceId: positionals[0],
        leadFile: values.lead,
        ...(values.events ? { eventsFile: values.events } : {}),
        ...(values.start ? { start: values.start } : {}),
        json: values.json!,
        configDir: values.config ?? env.NURTURE_CONFIG_DIR,
        templatesDir: values.templates ?? env.NURTURE_TEMPLATES_DIR,
      });
    }
    case 'preview': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { lead: { type: 'string' }, out: { type: 'string' } } });
      if (!positionals[0] || !values.lead) throw new Error('usage: nurture preview <template> --lead <file|email> [--out dir]');
      return preview({ template: positionals[0], lead: values.lead, ...(values.out ? { out: values.out } : {}) });
    }
    case 'enroll': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { lead: { type: 'string' } } });
      if (!positionals[0] || !values.lead) throw new Error('usage: nurture enroll <sequence> --lead EMAIL');
      return enrollCommand({ sequence: positionals[0], email: values.lead });
    }
    case 'exit': {
      const { values } = parseArgs({ args: rest, options: { lead: { type: 'string' }, sequence: { type: 'string' } } });
      if (!values.lead) throw new Error('usage: nurture exit --lead EMAIL [--sequence ID]');
      return exitCommand({ email: values.lead, ...(values.sequence ? { sequence: values.sequence } : {}) });
    }
    case 'release': {
      const { values } = parseArgs({ args: rest, options: { lead: { type: 'string' }, step: { type: 'string' }, reason: { type: 'string' } } });
      if (!values.lead || !values.reason) throw new Error('usage: nurture release --lead EMAIL [--step ID] --reason "why it goes out now"');
      return releaseCommand({ email: values.lead, reason: values.reason, ...(values.step ? { step: values.step } : {}) });
    }
    case 'import': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { mapping: { type: 'string' }, 'dry-run': { type: 'boolean', default: false }, 'no-enroll': { type: 'boolean', default: false }, report: { type: 'string' }, batch: { type: 'string' } } });
      if (positionals.length !== 1) throw new Error('usage: nurture import FILE.csv [--mapping FILE.yaml] [--dry-run] [--no-enroll] [--report FILE] [--batch N]');
      return importCommand({ file: positionals[0]!, dryRun: values['dry-run']!, enroll: !values['no-enroll'], ...(values.mapping ? { mapping: values.mapping } : {}), ...(values.report ? { report: values.report } : {}), ...(values.batch ? { batch: count('--batch', values.batch, 1) } : {}) });
    }
    case 'export': {
      const { values } = parseArgs({ args: rest, options: { lead: { type: 'string' }, out: { type: 'string' } } });
      if (!values.lead) throw new Error('usage: nurture export --lead EMAIL [--out FILE]');
      return exportCommand({ email: values.lead, ...(values.out ? { out: values.out } : {}) });
    }
    case 'erase': {
      const { values } = parseArgs({ args: rest, options: { lead: { type: 'string' } } });
      if (!values.lead) throw new Error('usage: nurture erase --lead EMAIL');
      return eraseCommand({ email: values.lead });
    }
    case 'fanout': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { status: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, n: { type: 'string', default: '20' } } });
      if (values.status) {
        const limit = count('-n', values.n!);
        return fanoutStatus({ databaseUrl: databaseUrlOf(readEnv()), json: values.json!, limit });
      }
      if (!positionals[0] || positionals.length > 1) throw new Error('usage: nurture fanout <sequence> | nurture fanout --status [--json] [-n N]');
      return fanoutCommand({ sequence: positionals[0] });
    }
    case 'messages': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          uncertain: { type: 'boolean', default: false },
          status: { type: 'string' },
          json: { type: 'boolean', default: false },
          n: { type: 'string', default: '500' },
          resend: { type: 'boolean', default: false },
          'mark-sent': { type: 'boolean', default: false },
        },
      });
      const { messagesList, messagesRelease, parseStatus } = await import('./messages.js');
      const limit = count('-n', values.n!);
      const env = readEnv();
      const databaseUrl = databaseUrlOf(env);
      if (positionals[0] === 'release') {
        const id = positionals[1];
        if (!id || values.resend === values['mark-sent']) throw new Error('usage: nurture messages release <id> --resend | --mark-sent');
        const redisUrl = env.REDIS_URL ?? readRuntimeFile(env.NURTURE_DATA_DIR)?.redisUrl;
        if (!redisUrl) throw new Error('set REDIS_URL, or start nurture first (`npm start`) so its embedded Redis can be found');
        return messagesRelease({ databaseUrl, redisUrl, redisCluster: env.REDIS_URL ? env.REDIS_CLUSTER : undefined, queuePrefix: env.QUEUE_PREFIX, id, decision: values.resend ? 'resend' : 'mark_sent' });
      }
      if (positionals.length) throw new Error('usage: nurture messages [--uncertain | --status S] [--json] [-n N] | nurture messages release <id> --resend|--mark-sent');
      return messagesList({ databaseUrl, status: values.uncertain ? 'uncertain' : parseStatus(values.status ?? 'uncertain'), json: values.json!, limit });
    }
    case 'dkim': {
      const env = readEnv();
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { config: { type: 'string' }, templates: { type: 'string' }, selector: { type: 'string' }, force: { type: 'boolean', default: false } } });
      if (positionals[0] === 'generate') {
        if (!positionals[1]) throw new Error('usage: nurture dkim generate <domain> [--selector s] [--force] [--config dir]');
        const { dkimGenerate } = await import('./dkim.js');
        return dkimGenerate({ domain: positionals[1], config: values.config ?? env.NURTURE_CONFIG_DIR, force: values.force, ...(values.selector ? { selector: values.selector } : {}) });
      }
      if (!positionals[0]) throw new Error('usage: nurture dkim <domain> [--config dir] | nurture dkim generate <domain> [--selector s] [--force]');
      return dkim({ domain: positionals[0], config: values.config ?? env.NURTURE_CONFIG_DIR, templates: values.templates ?? env.NURTURE_TEMPLATES_DIR });
    }
    case 'mailbox': {
      const env = readEnv();
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { config: { type: 'string' }, templates: { type: 'string' }, json: { type: 'boolean', default: false } } });
      if (positionals[0] !== 'test' || positionals.length !== 2) throw new Error('usage: nurture mailbox test OWNER [--json] [--config dir]');
      return mailboxTest({ owner: positionals[1]!, config: values.config ?? env.NURTURE_CONFIG_DIR, templates: values.templates ?? env.NURTURE_TEMPLATES_DIR, json: values.json! });
    }
    case 'stats': {
      const { values } = parseArgs({
        args: rest,
        options: { json: { type: 'boolean', default: false }, since: { type: 'string' }, sequence: { type: 'string' }, accounts: { type: 'string' }, config: { type: 'string' } },
      });
      const env = readEnv();
      return statsCommand({
        databaseUrl: databaseUrlOf(env),
        json: values.json!,
        ...(values.since ? { since: values.since } : {}),
        ...(values.sequence ? { sequence: values.sequence } : {}),
        ...(values.accounts ? { accounts: Number(values.accounts) } : {}),
        configDir: values.config ?? env.NURTURE_CONFIG_DIR,
        templatesDir: env.NURTURE_TEMPLATES_DIR,
      });
    }
    case 'schema': {
      const which = rest[0];
      if (which !== 'funnel' && which !== 'sequence' && which !== 'mailboxes') throw new Error('usage: nurture schema funnel|sequence|mailboxes');
      const { schema, title } = SCHEMA_FILES[which];
      console.log(JSON.stringify(jsonSchemaOf(schema, title), null, 2));
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(HELP);
      return 0;
    default:
      console.error(`unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

/** The configured database, else the one a running `nurture start` left its address for. */
function databaseUrlOf(env: ReturnType<typeof readEnv>): string {
  const url = env.DATABASE_URL ?? readRuntimeFile(env.NURTURE_DATA_DIR)?.databaseUrl;
  if (!url) throw new Error('set DATABASE_URL, or start nurture first (`npm start`) so its embedded database can be found');
  return databaseUrlWith(url, { prepare: env.DB_PREPARE });
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err) => {
    console.error(err instanceof ConfigError ? `configuration is invalid:\n${err.message}` : `error: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);

/** A whole number given for an option (`-n 20`), or an error that names the option and what it got. */
function count(option: string, value: string, min = 0): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) throw new Error(`${option} expects a whole number${min ? ` of at least ${min}` : ''}, not "${value}"`);
  return n;
}
