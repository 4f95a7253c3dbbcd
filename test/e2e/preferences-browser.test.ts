// The preference centre in a real browser (Playwright driving the system's Chromium) against the real HTTP
// server, Postgres, Redis and SMTP: the person opens the link in their newsletter, chooses to hear only from
// their rep, and from then on the newsletter is refused while the rep's one-to-one sequence still sends.
import { existsSync } from 'node:fs';
import { eq } from 'drizzle-orm';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leads, signals } from '../../src/db/schema.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

const executablePath = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p): p is string => !!p && existsSync(p)) ?? null;
if (!executablePath) console.warn('preference browser test SKIPPED: no Chromium found (apt-get install -y chromium, or set CHROMIUM_PATH).');

let h: Harness;
let browser: Browser;
const mailsTo = (email: string) => h.smtp.mails.filter((m) => m.envelopeTo.includes(email));

describe.skipIf(!executablePath)('the preference centre in a browser', () => {
  beforeAll(async () => {
    h = await startHarness({ configDir: 'test/fixtures/config/e2e' });
    browser = await chromium.launch({ executablePath: executablePath!, args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  it("keeps only the rep's mail: the newsletter stops, the one-to-one sequence goes on", async () => {
    const lead = { email: 'eve@browser.test', firstName: 'Eve', persona: 'economic_buyer', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Browser Co', domain: 'browser.test', tier: 'enterprise' } };
    expect((await h.post('/v1/triggers', { type: 'lead.upsert', lead, sequence: 'awareness-newsletter' })).json.enrolled).toHaveLength(1);
    const newsletter = await eventually('newsletter', async () => mailsTo('eve@browser.test')[0]);
    const link = /href="([^"]+\/p\/[\w.-]+)"/.exec(String(newsletter.parsed.html))![1]!;

    const page = await browser.newPage();
    await page.goto(link);
    expect(await page.textContent('h1')).toBe('Email preferences');
    expect(await page.textContent('#state')).toContain('You get all our mail');
    // Opening the page changed nothing.
    expect((await h.ctx.db.select().from(leads).where(eq(leads.email, 'eve@browser.test')))[0]!.mailPreference).toBe('all');

    await page.getByRole('button', { name: 'Only mail from my contact (no newsletters)' }).click();
    await page.getByRole('status').waitFor();
    expect(await page.textContent('#state')).toContain('only from your contact');
    const [eve] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'eve@browser.test'));
    expect(eve!.mailPreference).toBe('rep_only');
    const [signal] = await h.ctx.db.select().from(signals).where(eq(signals.kind, 'preference'));
    expect(signal!.evidence).toMatchObject({ via: 'preference_page', choice: 'rep_only', userAgent: expect.stringContaining('Chrome') });

    const refused = await h.post('/v1/triggers', { type: 'lead.upsert', lead, sequence: 'awareness-newsletter' });
    expect(refused.json.enrolled).toEqual([]);
    expect((await h.post('/v1/triggers', { type: 'lead.upsert', lead: { ...lead, stage: 'interest' } })).status).toBe(200);
    const oneToOne = await eventually("the rep's mail", async () => mailsTo('eve@browser.test').find((m) => m !== newsletter));
    expect(String(oneToOne.parsed.from?.text)).toContain('Sam Rivera');
    expect(mailsTo('eve@browser.test')).toHaveLength(2);
    await page.close();
  });
});
