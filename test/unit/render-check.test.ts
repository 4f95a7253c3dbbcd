import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkTemplate, compileTemplate, CONTEXT_FIELDS, loadTemplateSource } from '../../src/render/index.js';
import { fixtureTemplates } from '../fixtures/render/context.js';

const known = { fields: [...CONTEXT_FIELDS, 'lead.attributes.plan'], segmented: false };

async function check(name: string, options = known) {
  const source = loadTemplateSource(fixtureTemplates, name);
  return checkTemplate(source, await compileTemplate(source), options);
}

describe('checking a template for nurture validate', () => {
  it('finds unknown tokens, unguarded optional fields, unknown required fields and unused links, with positions', async () => {
    const file = path.join(fixtureTemplates, 'unknown-tokens.mjml');
    const issues = await check('unknown-tokens');
    expect(issues.map(({ code, line, column, field }) => ({ code, line, column, field }))).toEqual([
      { code: 'unknown_required_field', line: 3, column: undefined, field: 'lead.attributes.nope' },
      { code: 'unused_link', line: 5, column: undefined, field: 'links.unused' },
      { code: 'unknown_token', line: 11, column: 23, field: 'lead.fistName' },
      { code: 'optional_without_default', line: 11, column: 54, field: 'lead.title' },
      { code: 'optional_without_default', line: 12, column: 114, field: 'account.industry' },
    ]);
    expect(issues.every((issue) => issue.file === file)).toBe(true);
    expect(issues[2]?.message).toContain('did you mean lead.firstName?');
  });

  it('accepts fields guarded by #if, passed through default, or listed as required', async () => {
    const issues = await check('unknown-tokens');
    const fields = issues.map((issue) => issue.field);
    expect(fields).not.toContain('lead.firstName');
    expect(fields).not.toContain('lead.attributes.plan');
    expect(issues.filter((i) => i.field === 'lead.title')).toHaveLength(1);
  });

  it('requires an unsubscribe link in segmented templates, found through partials too', async () => {
    const segmented = { ...known, segmented: true };
    expect((await check('tokens', segmented)).map((i) => i.code)).not.toContain('missing_unsubscribe');
    expect((await check('no-unsubscribe', segmented)).map((i) => i.code)).toContain('missing_unsubscribe');
    expect((await check('no-unsubscribe', known)).map((i) => i.code)).toEqual([]);
  });

  it('requires the postal address in segmented templates, found through partials too', async () => {
    const segmented = { ...known, segmented: true };
    expect((await check('tokens', segmented)).map((i) => i.code)).not.toContain('missing_postal_address');
    const missing = (await check('no-unsubscribe', segmented)).filter((i) => i.code === 'missing_postal_address');
    expect(missing).toHaveLength(1);
    expect(missing[0]!.message).toContain('{{postalAddress}}');
    expect((await check('no-unsubscribe', known)).map((i) => i.code)).not.toContain('missing_postal_address');
  });

  it('reports tokens in included partials at the partial line', async () => {
    const issues = await check('uses-bad-partial');
    expect(issues).toEqual([
      expect.objectContaining({ code: 'unknown_token', file: path.join(fixtureTemplates, 'partials', 'bad-tokens.mjml'), line: 3, field: 'owner.nickname' }),
    ]);
  });
});
