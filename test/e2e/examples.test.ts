// The README's example payloads against the sample configuration: examples/event.json starts a sample
// sequence, and a lead outside that sequence's stage is told why it was not enrolled.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'config', templatesDir: 'templates' });
});
afterAll(async () => {
  await h?.close();
});

const example = (name: string) => JSON.parse(readFileSync(`examples/${name}`, 'utf8'));

describe('examples/event.json', () => {
  it('tells a lead still in awareness why the trial sequence did not take it', async () => {
    const lead = example('lead.json');
    expect((await h.post('/v1/triggers', lead)).status).toBe(200);
    const r = await h.post('/v1/triggers', example('event.json'));
    expect(r.status).toBe(200);
    expect(r.json.enrolled).toEqual([]);
    expect(r.json.refused).toEqual([{ sequence: 'trial-started', reason: 'lead is in stage awareness; the sequence is for stage interest' }]);
  });

  it('enrolls an interested lead in the trial-started sequence', async () => {
    const lead = example('lead.json');
    expect((await h.post('/v1/triggers', { ...lead, lead: { ...lead.lead, stage: 'interest' } })).status).toBe(200);
    const r = await h.post('/v1/triggers', example('event.json'));
    expect(r.status).toBe(200);
    expect(r.json.enrolled.map((e: { sequence: string }) => e.sequence)).toEqual(['trial-started']);
  });
});
