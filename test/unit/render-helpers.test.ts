import Handlebars from 'handlebars';
import { describe, expect, it } from 'vitest';
import { createHandlebars } from '../../src/render/index.js';

const hb = createHandlebars();
const render = (template: string, data: Record<string, unknown> = {}) => hb.compile(template)(data);

describe('template helpers', () => {
  it('live on a private instance, never the global Handlebars', () => {
    expect(Object.keys(Handlebars.helpers)).not.toContain('default');
    expect(Object.keys(hb.helpers)).toContain('default');
  });

  it('default falls back on null, undefined, empty and blank values only', () => {
    expect(render('{{default a "x"}}|{{default b "x"}}|{{default c "x"}}|{{default d "x"}}|{{default e "x"}}', { a: null, c: '  ', d: 'set', e: 0 })).toBe('x|x|x|set|0');
  });

  it('firstName uses the lead\'s name, tidies all-caps or all-lower names, and falls back otherwise', () => {
    expect(render('{{firstName}}', { lead: { firstName: 'JANE' } })).toBe('Jane');
    expect(render('{{firstName}}', { lead: { firstName: 'mary-kate' } })).toBe('Mary-Kate');
    expect(render('{{firstName}}', { lead: { firstName: 'McKenzie' } })).toBe('McKenzie');
    expect(render('{{firstName "friend"}}', { lead: { firstName: 'jane@acme.test' } })).toBe('friend');
    expect(render('{{firstName}}', { lead: { firstName: null } })).toBe('there');
  });

  it('date formats in the lead\'s time zone', () => {
    const at = '2025-03-01T23:30:00Z';
    expect(render('{{date at "long" tz=lead.timeZone}}', { at, lead: { timeZone: 'Asia/Tokyo' } })).toBe('March 2, 2025');
    expect(render('{{date at "long" tz=lead.timeZone}}', { at, lead: { timeZone: 'America/New_York' } })).toBe('March 1, 2025');
    expect(render('{{date at "short"}}', { at, lead: { timeZone: 'Not/AZone' } })).toBe('3/1/25');
    expect(render('{{date at}}', { at: 'not a date' })).toBe('');
  });

  it('changes case and compares values', () => {
    expect(render('{{upper a}} {{lower a}} {{capitalize b}}', { a: 'MiXed', b: 'onboarding' })).toBe('MIXED mixed Onboarding');
    expect(render('{{#if (eq lead.persona "champion")}}yes{{else}}no{{/if}}', { lead: { persona: 'champion' } })).toBe('yes');
    expect(render('{{#if (or (eq a 1) (eq a 2))}}in{{/if}}{{#if (not a)}}none{{/if}}', { a: 2 })).toBe('in');
  });

  it('branches on persona and stage', () => {
    const data = { lead: { persona: 'economic-buyer', stage: 'evaluating' } };
    expect(render('{{#ifPersona "champion" "practitioner"}}hands-on{{else}}exec{{/ifPersona}}', data)).toBe('exec');
    expect(render('{{#ifStage "evaluating"}}compare{{/ifStage}}', data)).toBe('compare');
  });

  it('escapes helper output like any other value', () => {
    expect(render('{{default a "x"}} {{upper b}}', { a: '<b>"hi"</b>', b: '<i>' })).toBe('&lt;b&gt;&quot;hi&quot;&lt;/b&gt; &lt;I&gt;');
  });
});
