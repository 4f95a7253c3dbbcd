import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileTemplate, loadTemplateSource, TemplateError } from '../../src/render/index.js';
import { fixtureTemplates } from '../fixtures/render/context.js';

async function compileError(name: string): Promise<TemplateError> {
  const error = await compileTemplate(loadTemplateSource(fixtureTemplates, name)).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(TemplateError);
  return error as TemplateError;
}

describe('compiling a template', () => {
  it('keeps Handlebars tokens intact through MJML, in text and in href, src and alt', async () => {
    const compiled = await compileTemplate(loadTemplateSource(fixtureTemplates, 'tokens'));
    const html = compiled.htmlTemplate;
    expect(html).toContain('Hi {{lead.firstName}}, from {{default account.name "your team"}}.');
    expect(html).toMatch(/href="\{\{links\.guide\}\}"/);
    expect(html).toContain('src="https://cdn.example.com/{{account.domain}}/chart.png?size={{default account.tier "all"}}"');
    expect(html).toContain('alt="Chart for {{default account.industry "B2B"}} teams"');
    expect(html).toContain('href="https://example.com/r/{{lead.persona}}?a=1&amp;b=2"');
    expect(html).toContain('<title>{{subject}}</title>');
    expect(html).not.toMatch(/%7B%7B|NRTOK/);
  });

  it('gives declared links their front matter id and tag, other links a stable hashed id', async () => {
    const compiled = await compileTemplate(loadTemplateSource(fixtureTemplates, 'tokens'));
    expect(compiled.links).toEqual([
      { id: 'guide', hrefTemplate: '{{links.guide}}', tag: 'value:onboarding-benchmark' },
      { id: expect.stringMatching(/^l[0-9a-f]{8}$/), hrefTemplate: 'https://example.com/r/{{lead.persona}}?a=1&amp;b=2', tag: null },
    ]);
    const again = await compileTemplate(loadTemplateSource(fixtureTemplates, 'tokens'));
    expect(again.links).toEqual(compiled.links);
  });

  it('maps an MJML error to the line of the .mjml file, front matter included', async () => {
    const error = await compileError('broken-mjml');
    expect(error.code).toBe('mjml_invalid');
    expect(error.file).toBe(path.join(fixtureTemplates, 'broken-mjml.mjml'));
    expect(error.line).toBe(9);
    expect(error.message).toContain('mj-buton');
  });

  it('maps an MJML error inside a partial to the partial file and its line', async () => {
    const error = await compileError('broken-partial');
    expect(error.code).toBe('mjml_invalid');
    expect(error.file).toBe(path.join(fixtureTemplates, 'partials', 'broken.mjml'));
    expect(error.line).toBe(4);
  });

  it('refuses tokens MJML would silently drop, such as a block between components', async () => {
    const error = await compileError('dropped-token');
    expect(error.code).toBe('mjml_invalid');
    expect(error.line).toBe(8);
    expect(error.message).toContain('{{#if lead.title}}');
  });

  it('refuses an unknown helper at its line and column', async () => {
    const error = await compileError('unknown-helper');
    expect(error).toMatchObject({ code: 'unknown_helper', line: 8, column: 20 });
  });

  it('reports invalid front matter with file, line and column', () => {
    const error = (() => {
      try {
        loadTemplateSource(fixtureTemplates, 'bad-front-matter');
      } catch (e) {
        return e;
      }
    })() as TemplateError;
    expect(error).toBeInstanceOf(TemplateError);
    expect(error).toMatchObject({ code: 'front_matter_invalid', line: 4, column: 17 });
    expect(error.message).toContain('links.guide.url');
  });

  it('reports a missing template and a missing partial', () => {
    expect(() => loadTemplateSource(fixtureTemplates, 'nope')).toThrow(expect.objectContaining({ code: 'template_missing' }));
    expect(() => loadTemplateSource(fixtureTemplates, '../tokens')).toThrow(expect.objectContaining({ code: 'template_missing' }));
  });
});
