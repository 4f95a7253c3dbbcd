import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import nodemailer from 'nodemailer';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevServiceError } from '../../src/dev/errors.js';
import { startMailCatcher, type CaughtMessage } from '../../src/dev/mailcatcher.js';
import { answersOnPort } from '../../src/dev/ports.js';
import { startEmbeddedPostgres } from '../../src/dev/postgres.js';
import { startEmbeddedRedis } from '../../src/dev/redis.js';

let tempRoot: string;
const freshDir = async (name: string) => mkdtemp(path.join(tempRoot, `${name}-`));

beforeAll(async () => {
  tempRoot = await mkdtemp(path.join(os.tmpdir(), 'nurture-dev-test-'));
  // mkdtemp makes it 0700; as root the embedded Postgres runs as "postgres", who must pass through it.
  await chmod(tempRoot, 0o711);
});
afterAll(async () => {
  await rm(tempRoot, { recursive: true, force: true });
});

describe('embedded Postgres', () => {
  it('creates the nurture database on first start and keeps its data across a restart', async () => {
    const dataDir = await freshDir('pg');
    const first = await startEmbeddedPostgres({ dataDir });
    try {
      expect(first.url).toMatch(/^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/nurture$/);
      const sql = postgres(first.url, { max: 1, onnotice: () => {} });
      expect(await sql`select 1 as one`).toEqual([{ one: 1 }]);
      await sql`create table kept (note text)`;
      await sql`insert into kept values ('still here')`;
      await sql.end();
    } finally {
      await first.stop();
    }
    expect(await answersOnPort(first.port)).toBe(false);

    const second = await startEmbeddedPostgres({ dataDir });
    try {
      const sql = postgres(second.url, { max: 1 });
      expect(await sql`select note from kept`).toEqual([{ note: 'still here' }]);
      await sql.end();
    } finally {
      await second.stop();
    }
  });
});

describe('embedded Redis', () => {
  it('answers PING, keeps data across a restart and closes its port on stop', async () => {
    const dataDir = await freshDir('redis');
    const first = await startEmbeddedRedis({ dataDir });
    const client = new Redis(first.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await client.connect();
      expect(await client.ping()).toBe('PONG');
      await client.set('kept', 'still here');
    } finally {
      client.disconnect();
      await first.stop();
    }
    expect(await answersOnPort(first.port)).toBe(false);

    const second = await startEmbeddedRedis({ dataDir });
    const again = new Redis(second.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await again.connect();
      expect(await again.get('kept')).toBe('still here');
    } finally {
      again.disconnect();
      await second.stop();
    }
  });

  it('tells the user how to install redis-server when it is not on PATH', async () => {
    const emptyBin = await freshDir('bin');
    const path = process.env.PATH;
    process.env.PATH = emptyBin;
    try {
      const error = await startEmbeddedRedis({ dataDir: await freshDir('redis') }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DevServiceError);
      expect((error as DevServiceError).code).toBe('REDIS_NOT_INSTALLED');
      expect((error as Error).message).toContain('sudo apt-get install redis-server');
      expect((error as Error).message).toContain('brew install redis');
      expect((error as Error).message).toContain('REDIS_URL=redis://host:6379');
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('mail catcher', () => {
  const hostileSubject = '<script>alert("subject")</script> Welcome & more';

  it('stores each message as an .eml, lists it escaped and serves it as JSON', async () => {
    const dir = path.join(await freshDir('mail'), 'mail');
    const catcher = await startMailCatcher({ dir });
    const transport = nodemailer.createTransport(catcher.url);
    let caught: CaughtMessage;
    try {
      const info = await transport.sendMail({
        from: 'Nurture <hello@nurture.test>',
        to: 'lead@example.com',
        subject: hostileSubject,
        text: 'plain words',
        html: '<p>Hello</p><script>window.ran = true</script>',
      });
      expect(info.response).toMatch(/^250 /);

      caught = await catcher.waitForMessage((m) => m.messageId === info.messageId);
      expect(caught).toMatchObject({
        subject: hostileSubject,
        envelopeFrom: 'hello@nurture.test',
        envelopeTo: ['lead@example.com'],
        hasHtml: true,
        hasText: true,
      });

      const files = (await readdir(dir)).filter((name) => name.endsWith('.eml'));
      expect(files).toEqual([path.basename(caught.file)]);
      expect(files[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z-[0-9a-f]{8}\.eml$/);
      expect(await readFile(caught.file, 'utf8')).toContain('lead@example.com');

      const api = (await (await fetch(`${catcher.webUrl}/api/messages`)).json()) as CaughtMessage[];
      expect(api.map((m) => m.subject)).toEqual([hostileSubject]);

      const listing = await fetch(catcher.webUrl);
      expect(listing.headers.get('content-security-policy')).toContain("default-src 'none'");
      const page = await listing.text();
      expect(page).not.toContain('<script>');
      expect(page).toContain('&lt;script&gt;alert(&quot;subject&quot;)&lt;/script&gt; Welcome &amp; more');

      const html = await fetch(`${catcher.webUrl}/messages/${caught.id}/html`);
      expect(html.headers.get('content-security-policy')).toMatch(/^sandbox;/);
      expect(await html.text()).toContain('<p>Hello</p>');
      expect(await (await fetch(`${catcher.webUrl}/messages/${caught.id}/text`)).text()).toContain('plain words');
      expect(await (await fetch(`${catcher.webUrl}/messages/${caught.id}/raw`)).text()).toContain(
        `Message-ID: ${info.messageId}`,
      );
    } finally {
      transport.close();
      await catcher.stop();
    }

    const restarted = await startMailCatcher({ dir });
    try {
      expect(restarted.messages().map((m) => m.id)).toEqual([caught.id]);
    } finally {
      await restarted.stop();
    }
  });

  it('lists an .eml dropped into its folder by hand after a restart', async () => {
    const dir = await freshDir('mail');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'hand-made.eml'), 'From: a@b.test\r\nSubject: by hand\r\n\r\nhi\r\n');
    const catcher = await startMailCatcher({ dir });
    try {
      expect(catcher.messages().map((m) => m.subject)).toEqual(['by hand']);
    } finally {
      await catcher.stop();
    }
  });
});
