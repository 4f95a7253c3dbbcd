import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startEmbeddedDefaults } from '../../src/dev/index.js';
import { escapeHtml } from '../../src/dev/mail-web.js';
import { freePort } from '../../src/dev/ports.js';

describe('startEmbeddedDefaults', () => {
  it('starts nothing when every service is given in env', async () => {
    const env = {
      DATABASE_URL: 'postgres://u:p@db:5432/nurture',
      REDIS_URL: 'redis://cache:6379',
      SMTP_URL: 'smtp://relay:587',
    };
    const defaults = await startEmbeddedDefaults({ dataDir: '/nonexistent/never-created', env });
    expect(defaults).toMatchObject({
      databaseUrl: env.DATABASE_URL,
      redisUrl: env.REDIS_URL,
      smtpUrl: env.SMTP_URL,
      started: [],
    });
    expect(defaults.mailWebUrl).toBeUndefined();
    await defaults.stop();
  });
});

describe('freePort', () => {
  it('returns the preferred port when it is free and another one when it is taken', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const taken = (server.address() as net.AddressInfo).port;
    try {
      const other = await freePort(taken);
      expect(other).not.toBe(taken);
      server.close();
      await new Promise((resolve) => server.once('close', resolve));
      expect(await freePort(taken)).toBe(taken);
    } finally {
      server.close();
    }
  });
});

describe('escapeHtml', () => {
  it('escapes everything that could open markup or an attribute', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&</a>`)).toBe(
      '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
  });
});
