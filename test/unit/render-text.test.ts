// The plain-text part is made from a skeleton converted once per template version; it must read as a
// conversion of each message's own HTML would, and fall back to that conversion wherever it can't.
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileTemplate, loadTemplateSource, renderMessage } from '../../src/render/index.js';
import { htmlToPlainText, sameText } from '../../src/render/text.js';
import { aContext, fixtureTemplates, sampleTemplates, tracking } from '../fixtures/render/context.js';

const templatesIn = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.mjml')).map((f) => f.slice(0, -'.mjml'.length));

async function template(body: string, frontMatter = 'subject: "Hi"') {
  const dir = mkdtempSync(path.join(tmpdir(), 'nurture-text-'));
  writeFileSync(path.join(dir, 't.mjml'), `---\n${frontMatter}\n---\n<mjml><mj-body><mj-section><mj-column><mj-text>${body}</mj-text></mj-column></mj-section></mj-body></mjml>\n`);
  return compileTemplate(loadTemplateSource(dir, 't'));
}

describe('the plain-text part', () => {
  it.each(templatesIn(sampleTemplates))('reads like a conversion of its own HTML for the shipped template %s, made from the skeleton', async (name) => {
    const compiled = await compileTemplate(loadTemplateSource(sampleTemplates, name));
    expect(compiled.renderText).not.toBeNull();
    for (const lead of [{}, { firstName: 'Ann-Marie', attributes: { plan: 'enterprise & more <b>' } }]) {
      const message = renderMessage(compiled, aContext({ lead }), tracking);
      expect(sameText(message.text, htmlToPlainText(message.html.replace(/<img[^>]*o\/msg42\.gif[^>]*>/, '')))).toBe(true);
      expect(message.text).not.toMatch(/NRTOK|NRLNK|\{\{/);
      // No stray space a block helper's indentation left at either end of a line (the signature's).
      expect(message.text.split('\n').filter((l) => /[ \t]$/.test(l) || /^ [A-Za-z]/.test(l))).toEqual([]);
    }
  });

  it('carries the tracked URL of each link and the token values unescaped', async () => {
    const compiled = await compileTemplate(loadTemplateSource(fixtureTemplates, 'links'));
    const message = renderMessage(compiled, aContext({ lead: { attributes: { plan: 'a&b' } } }), tracking);
    expect(message.text).toMatch(/guide\s+\(https:\/\/t\.handrail\.example\/c\/guide\?to=https%3A%2F%2Fexample\.com%2Fguide\)/);
    expect(message.text).toContain(`(https://t.handrail.example/c/${message.links.find((l) => l.url.includes('/plan/'))!.id}?to=${encodeURIComponent('https://example.com/plan/a&b')})`);
    expect(message.text).toMatch(/mail me\s+\(sam@handrail\.example\)/);
    const untracked = renderMessage(compiled, aContext(), { trackLink: null, pixelUrl: null });
    expect(untracked.text).toMatch(/guide\s+\(https:\/\/example\.com\/guide\)/);
    // Lines a long value pushed past the width are wrapped again; only a URL may stand longer.
    expect(message.text.split('\n').filter((line) => line.length > 78 && !/https?:\/\//.test(line))).toEqual([]);
  });

  it('wraps each paragraph once its values are in: no short line left where a placeholder broke it', async () => {
    const compiled = await template(
      'I work with onboarding teams at companies like {{account.name}}, and the question I hear most is what a good first thirty days looks like for a new customer, with <a href="https://example.com/guide">the guide</a> to read.',
    );
    for (const name of ['Acme Logistics', 'A', 'Handelsgesellschaft für Spedition und Lagerei Norddeutschland mbH']) {
      const lines = renderMessage(compiled, aContext({ account: { name } }), tracking).text.split('\n');
      // Every line but the paragraph's last is filled to near the width: the next word would not have fitted.
      for (let i = 0; i < lines.length - 1; i++) {
        const nextWord = lines[i + 1]!.trim().split(' ')[0]!;
        if (nextWord && !/https?:\/\//.test(lines[i]!) && !/https?:\/\//.test(nextWord)) expect(lines[i]!.length + 1 + nextWord.length, `${name}: ${lines[i]}`).toBeGreaterThan(78);
      }
    }
  });

  it('prints an address shown as its own link text once', async () => {
    const compiled = await template('Write to <a href="mailto:{{owner.email}}">{{owner.email}}</a>.');
    for (let i = 0; i < 5; i++) expect(renderMessage(compiled, aContext(), tracking).text).toBe('Write to sam@handrail.example.');
  });

  it('converts each message where the template puts raw markup from a value', async () => {
    const compiled = await template('Hello {{{lead.attributes.note}}}');
    expect(compiled.renderText).toBeNull();
    const message = renderMessage(compiled, aContext({ lead: { attributes: { note: '<b>bold</b> words' } } }), tracking);
    expect(message.text).toBe('Hello bold words');
  });

  it('converts each message where one link id leads to several places (a link inside {{#each}})', async () => {
    const compiled = await template('{{#each lead.attributes.reads}}<a href="{{this}}">read</a> {{/each}}');
    const message = renderMessage(compiled, aContext({ lead: { attributes: { reads: ['https://a.example/1', 'https://a.example/2'] } } }), tracking);
    expect(message.text).toContain(encodeURIComponent('https://a.example/1'));
    expect(message.text).toContain(encodeURIComponent('https://a.example/2'));
  });

  it('stops using a skeleton that reads differently from the conversion (a heading that upper-cases a name)', async () => {
    const compiled = await template('<h4>For {{lead.firstName}}</h4><p>Hello</p>');
    const texts = [0, 1, 2, 3, 4].map(() => renderMessage(compiled, aContext(), tracking).text);
    for (const text of texts) expect(text).toContain('FOR JANE');
  });
});
