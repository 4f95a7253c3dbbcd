import { appendFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  checkTemplate, compileTemplate, CONTEXT_FIELDS, loadTemplateSource, renderMessage, TemplateCache, templateVersion,
} from '../../src/render/index.js';
import { aContext, sampleTemplates, tracking } from '../fixtures/render/context.js';

const sampleNames = readdirSync(sampleTemplates).filter((f) => f.endsWith('.mjml')).map((f) => f.replace(/\.mjml$/, ''));
const segmented = new Set(['value-benchmark', 'value-playbook', 'pitch-demo', 'trial-welcome']);

describe('the sample templates', () => {
  it('are all there', () => {
    expect(sampleNames.sort()).toEqual(['followup-note', 'intro-note', 'pitch-demo', 'trial-welcome', 'value-benchmark', 'value-playbook']);
  });

  it.each(sampleNames)('%s compiles cleanly, passes validate and renders', async (name) => {
    const source = loadTemplateSource(sampleTemplates, name);
    const compiled = await compileTemplate(source);
    expect(compiled.warnings).toEqual([]);
    const issues = checkTemplate(source, compiled, { fields: [...CONTEXT_FIELDS, 'lead.attributes.plan'], segmented: segmented.has(name) });
    expect(issues).toEqual([]);
    const message = renderMessage(compiled, aContext(), tracking);
    expect(message.html).not.toMatch(/\{\{|\}\}/);
    expect(message.text.length).toBeGreaterThan(200);
    expect(message.html).toContain('https://t.handrail.example/u/tok123');
  });

  it('lists the partials a template includes', () => {
    const source = loadTemplateSource(sampleTemplates, 'value-benchmark');
    expect(source.includes.map((i) => path.relative(sampleTemplates, i.path))).toEqual([
      'partials/header.mjml', 'partials/signature.mjml', 'partials/footer.mjml',
    ]);
    expect(source.bodyLine).toBe(10);
  });
});

describe('template versions and the compile cache', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'nurture-render-'));
    cpSync(sampleTemplates, dir, { recursive: true });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('changes when the template or any included partial changes, and only then', () => {
    const before = templateVersion(loadTemplateSource(dir, 'intro-note'));
    expect(templateVersion(loadTemplateSource(dir, 'intro-note'))).toBe(before);
    appendFileSync(path.join(dir, 'partials', 'signature.mjml'), '\n');
    const afterPartial = templateVersion(loadTemplateSource(dir, 'intro-note'));
    expect(afterPartial).not.toBe(before);
    appendFileSync(path.join(dir, 'intro-note.mjml'), '\n');
    expect(templateVersion(loadTemplateSource(dir, 'intro-note'))).not.toBe(afterPartial);
    // A partial the template does not include leaves its version alone.
    appendFileSync(path.join(dir, 'partials', 'header.mjml'), '\n');
    expect(templateVersion(loadTemplateSource(dir, 'intro-note'))).toBe(templateVersion(loadTemplateSource(dir, 'intro-note')));
  });

  it('compiles once per version and recompiles after a partial is edited', async () => {
    const compile = vi.fn(compileTemplate);
    const cache = new TemplateCache(compile);
    const first = await cache.get(loadTemplateSource(dir, 'value-playbook'));
    const [second, third] = await Promise.all([cache.get(loadTemplateSource(dir, 'value-playbook')), cache.get(loadTemplateSource(dir, 'value-playbook'))]);
    expect(compile).toHaveBeenCalledTimes(1);
    expect(second).toBe(first);
    expect(third).toBe(first);

    const footer = path.join(dir, 'partials', 'footer.mjml');
    writeFileSync(footer, (await import('node:fs')).readFileSync(footer, 'utf8').replace('we think it is useful to you', 'we met at 9 Pier Road'));
    const edited = await cache.get(loadTemplateSource(dir, 'value-playbook'));
    expect(compile).toHaveBeenCalledTimes(2);
    expect(edited.version).not.toBe(first.version);
    expect(renderMessage(edited, aContext(), tracking).html).toContain('9 Pier Road');
  });

  it('loads for a send without re-parsing an unchanged template, and still sees every edit at once', async () => {
    const compile = vi.fn(compileTemplate);
    const cache = new TemplateCache(compile);
    const first = await cache.load(dir, 'value-playbook');
    expect(await cache.load(dir, 'value-playbook')).toBe(first);
    expect(compile).toHaveBeenCalledTimes(1);

    // A partial edited between two sends: the next send renders the new text.
    const footer = path.join(dir, 'partials', 'footer.mjml');
    writeFileSync(footer, (await import('node:fs')).readFileSync(footer, 'utf8').replace('we think it is useful to you', 'we met at 9 Pier Road'));
    const edited = await cache.load(dir, 'value-playbook');
    expect(edited.version).not.toBe(first.version);
    expect(renderMessage(edited, aContext(), tracking).html).toContain('9 Pier Road');

    // The front matter too (it is parsed only when the file changed), and a template that is gone is missing.
    const file = path.join(dir, 'value-playbook.mjml');
    writeFileSync(file, (await import('node:fs')).readFileSync(file, 'utf8').replace(/^subject: .*$/m, 'subject: "A new subject"'));
    expect(renderMessage(await cache.load(dir, 'value-playbook'), aContext(), tracking).subject).toBe('A new subject');
    rmSync(file);
    await expect(cache.load(dir, 'value-playbook')).rejects.toMatchObject({ code: 'template_missing' });
  });

  it('trusts an unchanged stat only for a settled file, and sees a same-size edit in place or a file replaced', async () => {
    // Every file counts as settled at once, so the stat alone vouches from the second load on.
    const cache = new TemplateCache(compileTemplate, { settledAfterMs: 0 });
    const first = await cache.load(dir, 'value-playbook');
    expect(await cache.load(dir, 'value-playbook')).toBe(first);
    expect(await cache.load(dir, 'value-playbook')).toBe(first);

    // Written in place, the same number of bytes: the change time moves.
    const footer = path.join(dir, 'partials', 'footer.mjml');
    const text = readFileSync(footer, 'utf8');
    expect(text).toContain('useful to you');
    writeFileSync(footer, text.replace('useful to you', 'USEFUL TO YOU'));
    const edited = await cache.load(dir, 'value-playbook');
    expect(edited.version).not.toBe(first.version);
    expect(renderMessage(edited, aContext(), tracking).html).toContain('USEFUL TO YOU');
    expect(await cache.load(dir, 'value-playbook')).toBe(edited);

    // Replaced by another file (an editor's save, a git checkout): another inode.
    writeFileSync(`${footer}.new`, text);
    renameSync(`${footer}.new`, footer);
    const restored = await cache.load(dir, 'value-playbook');
    expect(restored.version).toBe(first.version);
    expect(renderMessage(restored, aContext(), tracking).html).toContain('useful to you');
  });

  it('does not keep a failed compile', async () => {
    const cache = new TemplateCache();
    writeFileSync(path.join(dir, 'partials', 'footer.mjml'), '<mj-section><mj-column><mj-txt>x</mj-txt></mj-column></mj-section>');
    await expect(cache.get(loadTemplateSource(dir, 'value-playbook'))).rejects.toMatchObject({ code: 'mjml_invalid' });
    expect(cache.size).toBe(0);
  });
});
