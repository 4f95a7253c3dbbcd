// `nurture validate` across YAML and templates: every problem at once, each with file:line:column.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  it('flags a segmented sequence when funnel.yaml has no postalAddress', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nurture-validate-'));
    try {
      cpSync('config', join(dir, 'config'), { recursive: true });
      cpSync('templates', join(dir, 'templates'), { recursive: true });
      const funnel = join(dir, 'config', 'funnel.yaml');
      writeFileSync(funnel, readFileSync(funnel, 'utf8').replace(/^postalAddress:.*$/m, ''));
      const issues = await validateConfig(join(dir, 'config'), join(dir, 'templates'), dir);
      const missing = issues.filter((i) => i.code === 'no_postal_address');
      expect(missing.map((i) => `${i.file}:${i.line}`)).toEqual(['config/sequences/awareness-benchmark.yaml:4', 'config/sequences/trial-started.yaml:5']);
      expect(missing[0]!.severity).toBe('error');
      expect(missing[0]!.message).toContain('postalAddress');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
