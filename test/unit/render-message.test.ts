import { beforeAll, describe, expect, it } from 'vitest';
import { compileTemplate, loadTemplateSource, renderMessage, RenderError, type CompiledTemplate } from '../../src/render/index.js';
import { aContext, fixtureTemplates, sampleTemplates, tracking } from '../fixtures/render/context.js';

let benchmark: CompiledTemplate;
let links: CompiledTemplate;
let tokens: CompiledTemplate;

beforeAll(async () => {
  benchmark = await compileTemplate(loadTemplateSource(sampleTemplates, 'value-benchmark'));
  links = await compileTemplate(loadTemplateSource(fixtureTemplates, 'links'));
  tokens = await compileTemplate(loadTemplateSource(fixtureTemplates, 'tokens'));
});

function renderError(fn: () => unknown): RenderError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(RenderError);
    return error as RenderError;
  }
  throw new Error('expected a RenderError');
}

describe('rendering a message for one lead', () => {
  it('personalises subject, preheader, body and attributes', () => {
    const message = renderMessage(tokens, aContext(), tracking);
    expect(message.subject).toBe('Jane at Acme Logistics');
    expect(message.preheader).toBe('For Logistics teams');
    expect(message.html).toContain('<title>Jane at Acme Logistics</title>');
    expect(message.html).toContain('Hi Jane, from Acme Logistics.');
    expect(message.html).toContain('src="https://cdn.example.com/acme.test/chart.png?size=mid"');
    expect(message.html).toContain('alt="Chart for Logistics teams"');
    expect(message.html).not.toContain('{{');
  });

  it('renders the realistic benchmark with its structure and the lead\'s persona branch', () => {
    const message = renderMessage(benchmark, aContext(), tracking);
    expect(message.subject).toBe('Jane, a benchmark for Logistics onboarding teams');
    expect(message.html).toMatch(/^<!doctype html>/i);
    expect(message.html).toContain('The 2025 onboarding benchmark');
    expect(message.html).toContain('handoff checklist on page 9');
    expect(message.html).not.toContain('page 4 has the numbers');
    expect(message.html).toContain('Sam Rivera');
    expect(message.html).toContain('500 Harrison Ave, Boston');
    const buyer = renderMessage(benchmark, aContext({ lead: { persona: 'economic-buyer' } }), tracking);
    expect(buyer.html).toContain('page 4 has the numbers');
  });

  it('escapes markup and quotes in lead data everywhere in the HTML', () => {
    const hostile = aContext({ lead: { firstName: '<script>alert(1)</script>' }, account: { name: 'Acme "Quote" & Co', industry: '"><img src=x onerror=alert(1)>' } });
    const message = renderMessage(tokens, hostile, tracking);
    expect(message.html).not.toContain('<script>alert(1)</script>');
    expect(message.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(message.html).toContain('Acme &quot;Quote&quot; &amp; Co');
    expect(message.html).toContain('alt="Chart for &quot;&gt;&lt;img src&#x3D;x onerror&#x3D;alert(1)&gt; teams"');
    // Subject is a header, not HTML: no entities in the inbox.
    expect(message.subject).toBe('<script>alert(1)</script> at Acme "Quote" & Co');
  });

  it('refuses a CR or LF in the subject or preheader', () => {
    expect(renderError(() => renderMessage(tokens, aContext({ lead: { firstName: 'Jane\r\nBcc: x@evil.test' } }), tracking))).toMatchObject({ code: 'header_injection', field: 'subject' });
    expect(renderError(() => renderMessage(tokens, aContext({ account: { industry: 'Logistics\nX-Bad: 1' } }), tracking))).toMatchObject({ code: 'header_injection', field: 'preheader' });
  });

  it('holds the send when a required value is missing rather than writing "Hi ,"', () => {
    for (const firstName of [null, '', '   ', undefined]) {
      const error = renderError(() => renderMessage(tokens, aContext({ lead: { firstName } }), tracking));
      expect(error).toMatchObject({ code: 'missing_value', field: 'lead.firstName' });
    }
  });

  it('holds the send when an unguarded subject token is empty', () => {
    const error = renderError(() => renderMessage(benchmark, aContext({ lead: { firstName: '' } }), tracking));
    expect(error.field).toBe('lead.firstName');
  });

  it('rewrites tracked links but leaves mailto, tel, anchors, unsubscribe and preferences direct', () => {
    const message = renderMessage(links, aContext(), tracking);
    const hrefs = Array.from(message.html.matchAll(/<a\b[^>]*href="([^"]*)"/g), (m) => m[1]);
    expect(hrefs).toContain('https://t.handrail.example/c/guide?to=https%3A%2F%2Fexample.com%2Fguide');
    expect(hrefs).toContain('mailto:sam@handrail.example');
    expect(hrefs).toContain('tel:+15035550142');
    expect(hrefs).toContain('#numbers');
    expect(hrefs).toContain('https://t.handrail.example/u/tok123');
    expect(hrefs).toContain('https://t.handrail.example/p/tok123');
    expect(hrefs.filter((h) => h?.startsWith('https://t.handrail.example/c/'))).toHaveLength(4);
    expect(message.html).not.toContain('data-nurture-link');
    expect(message.links).toEqual([
      { id: 'guide', url: 'https://example.com/guide', tag: 'value:guide' },
      { id: expect.stringMatching(/^l[0-9a-f]{8}$/), url: 'https://example.com/plan/growth', tag: null },
      { id: expect.stringMatching(/^l[0-9a-f]{8}$/), url: 'https://example.com/book?email=jane@acme.test', tag: null },
    ]);
  });

  it('keeps link ids stable across recipients while URLs differ', () => {
    const a = renderMessage(links, aContext(), tracking);
    const b = renderMessage(links, aContext({ lead: { email: 'li@other.test', attributes: { plan: 'scale' } } }), tracking);
    expect(b.links.map((l) => l.id)).toEqual(a.links.map((l) => l.id));
    expect(b.links[1]?.url).toBe('https://example.com/plan/scale');
  });

  it('leaves every href as rendered when tracking is off', () => {
    const message = renderMessage(links, aContext(), { trackLink: null, pixelUrl: null });
    expect(message.html).toContain('href="https://example.com/guide"');
    expect(message.html).toContain('href="https://example.com/book?email=jane@acme.test"');
    expect(message.html).not.toContain('t.handrail.example/o/');
    expect(message.links).toHaveLength(3);
  });

  it('appends one 1x1 pixel just before </body>', () => {
    const message = renderMessage(benchmark, aContext(), tracking);
    expect(message.html.split('t.handrail.example/o/msg42.gif')).toHaveLength(2);
    expect(message.html).toMatch(/<img src="https:\/\/t\.handrail\.example\/o\/msg42\.gif" width="1" height="1" alt=""[^>]*display:block[^>]*\/><\/body>/);
  });

  it('produces a readable text part with links, without the pixel or preheader padding', () => {
    const message = renderMessage(benchmark, aContext(), tracking);
    expect(message.text).toContain('Hi Jane,');
    expect(message.text).toMatch(/Read the full benchmark\s+\(https:\/\/t\.handrail\.example\/c\/guide\?to=/);
    expect(message.text).toMatch(/unsubscribe\s+\(https:\/\/t\.handrail\.example\/u\/tok123\)/);
    expect(message.text).toMatch(/Days to first value\s+34\s+12/);
    expect(message.text).not.toContain('msg42.gif');
    expect(message.text).not.toContain(message.preheader);
    expect(message.text).not.toMatch(/[\u034f\u200c]/);
    expect(message.text).not.toContain('<');
    const longLines = message.text.split('\n').filter((line) => line.length > 78 && !/https?:\/\//.test(line));
    expect(longLines).toEqual([]);
  });

  it('shows the configured postal address in the footer, and none that is hard-coded', () => {
    const moved = renderMessage(benchmark, aContext({ postalAddress: 'Handrail GmbH, Hafenstraße 9, 20457 Hamburg' }), tracking);
    expect(moved.html).toContain('Hafenstraße 9, 20457 Hamburg');
    expect(moved.html).not.toContain('Harrison Ave');
    expect(moved.text).toContain('Hafenstraße 9, 20457 Hamburg');
    const none = renderMessage(benchmark, aContext({ postalAddress: null }), tracking);
    expect(none.html).not.toMatch(/Harrison Ave|Harbor Street/);
  });

  it('is signed by its sender: the brand for segmented mail, the rep for one-to-one mail', () => {
    const brand = { name: 'Maya at Handrail', email: 'maya@handrail.example', replyTo: 'hello@handrail.example' };
    const segmented = renderMessage(benchmark, aContext({ sender: brand }), tracking);
    expect(segmented.text).toContain('Maya at Handrail');
    expect(segmented.html).toContain('mailto:hello@handrail.example');
    expect(segmented.html).not.toContain('Sam Rivera');
    expect(segmented.html).not.toContain('+1-503-555-0142');
    const rep = { name: 'Sam Rivera', email: 'sam@handrail.example', title: 'Onboarding specialist', phone: '+1-503-555-0142' };
    const oneToOne = renderMessage(benchmark, aContext({ sender: rep }), tracking);
    expect(oneToOne.text).toContain('Sam Rivera');
    expect(oneToOne.html).toContain('Onboarding specialist, Handrail');
    expect(oneToOne.html).toContain('mailto:sam@handrail.example');
    expect(oneToOne.html).not.toContain('Maya at Handrail');
  });

  it('renders without an owner through the signature fallback', () => {
    const message = renderMessage(benchmark, aContext({ owner: null }), tracking);
    expect(message.html).toContain('The Handrail team');
  });

  it('holds the send when a bare attribute token has no value for this lead', async () => {
    const error = renderError(() => renderMessage(links, aContext({ lead: { attributes: {} } }), tracking));
    expect(error).toMatchObject({ code: 'missing_value' });
  });
});
