// `nurture validate` across YAML and templates: every problem at once, each with file:line:column.
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/usecases/validateConfig.js';

describe('validateConfig', () => {
  it('passes the sample configuration', async () => {
    const issues = await validateConfig('config', 'templates');
    expect(issues.filter((i) => i.severity === 'error')).toEqual([]);
  });

  it('reports undeclared attributes, optional fields without a fallback and a missing unsubscribe link', async () => {
    const issues = await validateConfig('test/fixtures/config/tokens', 'test/fixtures/config/tokens/templates');
    const byCode = (code: string) => issues.filter((i) => i.code === code);
    expect(byCode('unknown_token').map((i) => i.message).join('\n')).toContain('lead.attributes.seats');
    expect(byCode('unknown_token').map((i) => i.message).join('\n')).not.toContain('lead.attributes.plan');
    expect(byCode('optional_without_default').map((i) => i.message).join('\n')).toContain('lead.title');
    expect(byCode('missing_unsubscribe')).toHaveLength(1);
    // A sender domain without a DKIM key is a warning about funnel.yaml, not about the template.
    for (const i of issues.filter((i) => i.code !== 'dkim_missing')) {
      expect(i.file).toBe('test/fixtures/config/tokens/templates/tokens.mjml');
      expect(i.line).toBeGreaterThan(0);
    }
    const seats = byCode('unknown_token').find((i) => i.message.includes('seats'))!;
    expect(seats.line).toBe(11);
  });
});
