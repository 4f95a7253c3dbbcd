// The console in a real browser (Playwright driving the system's Chromium) against the real HTTP server,
// Postgres, Redis and SMTP: rows appear live as a lead arrives by signed webhook, the lead page shows the
// message and a person's click with its evidence, an uncertain send is settled from "needs a person", and
// a visitor from another address gets nothing without the admin token.
// NURTURE_SCREENSHOTS=docs/screenshots writes the main pages' screenshots there (the README shows them).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport } from '../../src/mail/transport.js';
import { listMessages } from '../../src/usecases/messages.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { startFaultySmtp, type FaultySmtp } from '../support/smtp-faults.js';

const CHROME_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const ADMIN = 'console-admin-token-0123456789';
const NAME = '<script>alert("owned")</script>';

/** Debian's chromium (what .ci/run installs), or CHROMIUM_PATH. */
function findChromium(): string | null {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];
  return candidates.find((p): p is string => !!p && existsSync(p)) ?? null;
}
const executablePath = findChromium();
if (!executablePath) console.warn('console browser test SKIPPED: no Chromium found. Install it (apt-get install -y chromium; .ci/run does) or set CHROMIUM_PATH.');

const shots = process.env.NURTURE_SCREENSHOTS;
async function shoot(page: Page, name: string): Promise<void> {
  if (!shots) return;
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

let h: Harness;
let relay: FaultySmtp;
let browser: Browser;
let offset = 0;
const clock = () => new Date(Date.now() + offset);
const links = (html: string) => [...html.matchAll(/href="([^"]+\/t\/c\/[^"]+)"/g)].map((m) => m[1]!);
const upsert = async (email: string, firstName: string, extra: Record<string, unknown> = {}) => {
  const r = await h.post('/v1/triggers', { type: 'lead.upsert', lead: { email, firstName, persona: 'champion', timeZone: 'Europe/Berlin', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Alpha Logistics', domain: 'alpha.test' }, ...extra } });
  expect(r.status).toBe(200);
};

describe.skipIf(!executablePath)('the console in a browser', () => {
  beforeAll(async () => {
    relay = await startFaultySmtp();
    h = await startHarness({ configDir: 'test/fixtures/config/e2e', now: clock, settings: { adminToken: ADMIN } });
    const original = h.ctx.transport;
    h.ctx.transport = createTransport(relay.url);
    original?.close();
    // The first send to maybe@ loses its connection after DATA: nobody knows whether it arrived.
    relay.data = (rcpts, n) => (rcpts.includes('maybe@alpha.test') && n === 1 ? 'drop' : 'accept');
    browser = await chromium.launch({ executablePath: executablePath! });
  });
  afterAll(async () => {
    await browser?.close();
    await h?.close();
    await relay?.close();
  });

  const open = async (path = '/') => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.on('dialog', (d) => {
      throw new Error(`a script ran on the page: dialog "${d.message()}"`);
    });
    await page.goto(`${h.http.url}${path}`);
    return page;
  };

  it("shows a lead's enrolled and sent rows as they happen, without a reload", async () => {
    const page = await open('/');
    await expect.poll(() => page.locator('#live-state').textContent()).toBe('live');
    await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));

    await upsert('ana@alpha.test', NAME);
    const log = page.locator('#live-log tbody');
    await log.locator('tr[data-kind="enrolled"]', { hasText: 'ana@alpha.test' }).waitFor();
    // Her follow-up is due two seconds after the intro (the fixture's wait), so on a busy machine both
    // may be in the log by the time it is read: the first is the one this waits for.
    await log.locator('tr[data-kind="sent"]', { hasText: 'ana@alpha.test' }).first().waitFor();
    expect(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).toBe(true);
    // The lead's own time is shown too.
    await expect.poll(() => log.locator('tr[data-kind="sent"]').first().textContent()).toContain('Europe/Berlin');

    // A person opens the mail a minute later and clicks: the click arrives live, judged human, with the rule.
    offset += 60_000;
    const mail = await eventually('mail to ana', async () => relay.mails.find((m) => m.envelopeTo.includes('ana@alpha.test')));
    const click = await fetch(links(String(mail.parsed.html))[0]!, { redirect: 'manual', headers: { 'user-agent': CHROME_UA, 'x-forwarded-for': '198.51.100.23' } });
    expect(click.status).toBe(302);
    const row = log.locator('tr[data-kind="click"]', { hasText: 'ana@alpha.test' });
    await row.waitFor();
    expect(await row.locator('.badge.human').textContent()).toMatch(/^human\b/);
    expect(await row.locator('.badge.human').getAttribute('title')).toMatch(/^a person: \w+/);
    expect(await row.locator('.badge.pend').textContent()).toBe('provisional');

    // Pause holds new rows back; resume shows them.
    await page.click('#live-toggle');
    await upsert('bea@alpha.test', 'Bea');
    await expect.poll(() => page.locator('#live-state').textContent()).toMatch(/paused: \d+ new/);
    expect(await log.locator('tr', { hasText: 'bea@alpha.test' }).count()).toBe(0);
    await page.click('#live-toggle');
    await log.locator('tr[data-kind="enrolled"]', { hasText: 'bea@alpha.test' }).waitFor();
    await log.locator('tr[data-kind="sent"]', { hasText: 'bea@alpha.test' }).waitFor();
    await shoot(page, 'live-log');
    await page.close();
  });

  it('opens the lead page: the message with the relay reply, the click as a person with its evidence, the name as text', async () => {
    const page = await open('/');
    await page.locator('#live-log a', { hasText: 'ana@alpha.test' }).first().click();
    await page.waitForURL(/\/leads\/ana%40alpha\.test$/);
    expect(await page.locator('h1').textContent()).toContain(NAME);
    const message = page.locator('#messages tr', { hasText: 'awareness-notes / intro' });
    expect(await message.locator('.badge').first().textContent()).toBe('sent');
    expect(await message.textContent()).toContain('250');
    const signal = page.locator('#signals tr', { has: page.locator('.badge', { hasText: /^click$/ }) });
    expect(await signal.locator('.badge.human').textContent()).toMatch(/^human\b/);
    await signal.locator('summary', { hasText: 'evidence' }).click();
    const evidence = await signal.locator('pre').textContent();
    expect(evidence).toContain('198.51.100.23');
    expect(evidence).toContain('Chrome/131');
    await shoot(page, 'lead');
    await page.setViewportSize({ width: 390, height: 844 });
    await shoot(page, 'lead-phone');
    await page.close();
  });

  it('settles an uncertain message from "needs a person", after asking, and shows its new state', async () => {
    await upsert('maybe@alpha.test', 'May');
    const [uncertain] = await eventually('maybe@ uncertain', async () => {
      const rows = await listMessages(h.ctx, { status: 'uncertain' });
      return rows.length ? rows : null;
    });
    const page = await open('/attention');
    const row = page.locator(`tr[data-message="${uncertain!.id}"]`);
    expect(await row.textContent()).toContain('maybe@alpha.test');
    await shoot(page, 'needs-a-person');
    await row.locator('a', { hasText: 'Mark sent' }).click();
    expect(await page.locator('h1').textContent()).toBe('Mark this message sent?');
    await page.click('button:has-text("Yes, mark it sent")');
    await page.waitForURL(/\/attention$/);
    expect(await page.locator('.notice').textContent()).toBe('message to maybe@alpha.test marked sent');
    expect(await page.locator(`tr[data-message="${uncertain!.id}"]`).count()).toBe(0);
    await page.goto(`${h.http.url}/leads/maybe%40alpha.test`);
    const message = page.locator(`#m-${uncertain!.id}`);
    expect(await message.locator('.badge').first().textContent()).toBe('sent');
    expect((await listMessages(h.ctx, { ids: [uncertain!.id] }))[0]!.status).toBe('sent');
    await page.close();
  });

  it('shows sequences, an account and the queues', async () => {
    const page = await open('/sequences');
    expect(await page.locator('#seq-awareness-notes table').textContent()).toContain('intro');
    await shoot(page, 'sequences');
    await page.goto(`${h.http.url}/accounts/alpha.test`);
    expect(await page.locator('h1').textContent()).toContain('Alpha Logistics');
    expect(await page.locator('tr', { hasText: 'Champion' }).textContent()).toContain('ana@alpha.test');
    await shoot(page, 'account');
    await page.goto(`${h.http.url}/queues`);
    expect(await page.locator('table').first().textContent()).toContain('send');
    await shoot(page, 'queues');
    await page.close();
  });

  it('refuses a visitor from another address until they sign in with the admin token', async () => {
    const context = await browser.newContext({ extraHTTPHeaders: { 'x-forwarded-for': '203.0.113.9' } });
    const page = await context.newPage();
    const refused = await page.goto(`${h.http.url}/attention`);
    expect(refused!.status()).toBe(401);
    expect(await page.locator('h1').textContent()).toBe('Sign in');
    expect(await page.content()).not.toContain('maybe@alpha.test');
    const api = await page.goto(`${h.http.url}/v1/leads/ana%40alpha.test`);
    expect(api!.status()).toBe(403);

    await page.goto(`${h.http.url}/attention`);
    await page.fill('input[name="token"]', 'not-the-admin-token');
    await page.click('button:has-text("Sign in")');
    expect(await page.locator('.notice.error').textContent()).toBe('That is not the admin token.');
    await page.fill('input[name="token"]', ADMIN);
    await page.click('button:has-text("Sign in")');
    await page.waitForURL(/\/attention$/);
    expect(await page.locator('h1').textContent()).toBe('Needs a person');
    const [cookie] = (await context.cookies()).filter((c) => c.name === 'nurture_session');
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict' });
    await page.click('button:has-text("Sign out")');
    await page.waitForURL(/\/login$/);
    expect((await page.goto(`${h.http.url}/attention`))!.status()).toBe(401);
    await context.close();
  });
});
