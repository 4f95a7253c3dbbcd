import { describe, expect, it } from 'vitest';
import type { Window } from '../../src/config/schema.js';
import { addBusinessDays, isInWindow, localTime, nextWindowOpen, zonedInstant } from '../../src/engine/time.js';

const weekdays: Window = { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' };
const everyDay: Window = { days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '09:00', to: '17:00' };
const iso = (d: Date) => d.toISOString();

describe('local time in a zone', () => {
  it('reads the wall clock on both sides of a DST change', () => {
    expect(localTime(new Date('2026-03-08T06:59:00Z'), 'America/New_York')).toMatchObject({ day: 8, hour: 1, minute: 59, weekday: 'sun' });
    expect(localTime(new Date('2026-03-08T07:00:00Z'), 'America/New_York')).toMatchObject({ day: 8, hour: 3, minute: 0 });
    expect(localTime(new Date('2026-10-25T00:59:00Z'), 'Europe/Berlin')).toMatchObject({ hour: 2, minute: 59 });
    expect(localTime(new Date('2026-10-25T01:00:00Z'), 'Europe/Berlin')).toMatchObject({ hour: 2, minute: 0 });
  });

  it('finds the instant for a local time in summer and in winter', () => {
    expect(iso(zonedInstant(2026, 1, 15, 9, 0, 'America/New_York'))).toBe('2026-01-15T14:00:00.000Z');
    expect(iso(zonedInstant(2026, 7, 15, 9, 0, 'America/New_York'))).toBe('2026-07-15T13:00:00.000Z');
    expect(iso(zonedInstant(2026, 1, 15, 9, 0, 'Europe/Berlin'))).toBe('2026-01-15T08:00:00.000Z');
    expect(iso(zonedInstant(2026, 7, 15, 9, 0, 'Europe/Berlin'))).toBe('2026-07-15T07:00:00.000Z');
    // The morning after each change already has the new offset.
    expect(iso(zonedInstant(2026, 3, 9, 9, 0, 'America/New_York'))).toBe('2026-03-09T13:00:00.000Z');
    expect(iso(zonedInstant(2026, 10, 26, 9, 0, 'Europe/Berlin'))).toBe('2026-10-26T08:00:00.000Z');
  });
});

describe('send windows', () => {
  it('is open from "from" up to, not including, "to", on the listed days only', () => {
    const tz = 'America/New_York';
    expect(isInWindow(new Date('2026-01-14T13:59:00Z'), weekdays, tz)).toBe(false); // Wed 08:59
    expect(isInWindow(new Date('2026-01-14T14:00:00Z'), weekdays, tz)).toBe(true); // Wed 09:00
    expect(isInWindow(new Date('2026-01-14T21:59:00Z'), weekdays, tz)).toBe(true); // Wed 16:59
    expect(isInWindow(new Date('2026-01-14T22:00:00Z'), weekdays, tz)).toBe(false); // Wed 17:00
    expect(isInWindow(new Date('2026-01-17T15:00:00Z'), weekdays, tz)).toBe(false); // Sat 10:00
  });

  it('judges the window in the lead zone, not in UTC', () => {
    const t = new Date('2026-01-14T15:00:00Z'); // 10:00 in New York, 16:00 in Berlin, 00:00 Thu in Tokyo
    expect(isInWindow(t, weekdays, 'America/New_York')).toBe(true);
    expect(isInWindow(t, weekdays, 'Europe/Berlin')).toBe(true);
    expect(isInWindow(t, weekdays, 'Asia/Tokyo')).toBe(false);
    expect(iso(nextWindowOpen(t, weekdays, 'Asia/Tokyo'))).toBe('2026-01-15T00:00:00.000Z'); // Thu 09:00 JST
  });

  it('returns the moment itself inside the window, and later the same day before it opens', () => {
    const inside = new Date('2026-01-14T15:00:00Z');
    expect(nextWindowOpen(inside, weekdays, 'America/New_York')).toEqual(inside);
    expect(iso(nextWindowOpen(new Date('2026-01-14T11:00:00Z'), weekdays, 'America/New_York'))).toBe('2026-01-14T14:00:00.000Z');
  });

  it.each([
    // Friday after hours → Monday morning, with the clocks changed over the weekend.
    ['America/New_York spring forward', 'America/New_York', '2026-03-06T23:00:00Z', '2026-03-09T13:00:00.000Z'],
    ['America/New_York fall back', 'America/New_York', '2026-10-30T22:00:00Z', '2026-11-02T14:00:00.000Z'],
    ['Europe/Berlin spring forward', 'Europe/Berlin', '2026-03-27T17:00:00Z', '2026-03-30T07:00:00.000Z'],
    ['Europe/Berlin fall back', 'Europe/Berlin', '2026-10-23T16:00:00Z', '2026-10-26T08:00:00.000Z'],
  ])('defers across a weekend DST change (%s)', (_name, tz, from, expected) => {
    const open = nextWindowOpen(new Date(from), weekdays, tz);
    expect(iso(open)).toBe(expected);
    expect(localTime(open, tz)).toMatchObject({ hour: 9, minute: 0, weekday: 'mon' });
    expect(isInWindow(open, weekdays, tz)).toBe(true);
  });

  it.each([
    ['America/New_York', '2026-03-08T04:30:00Z', '2026-03-08T13:00:00.000Z'], // Sat 23:30 EST → Sun 09:00 EDT
    ['Europe/Berlin', '2026-03-28T22:30:00Z', '2026-03-29T07:00:00.000Z'], // Sat 23:30 CET → Sun 09:00 CEST
  ])('does not skip the short day itself when it is in the window (%s)', (tz, from, expected) => {
    expect(iso(nextWindowOpen(new Date(from), everyDay, tz))).toBe(expected);
  });

  it('opens in the lead zone on the day the clocks change', () => {
    // Sunday 2026-11-01, New York falls back: 09:00 is EST, UTC−5.
    expect(iso(nextWindowOpen(new Date('2026-11-01T05:00:00Z'), everyDay, 'America/New_York'))).toBe('2026-11-01T14:00:00.000Z');
  });
});

describe('business days', () => {
  const tz = 'America/New_York';
  it('counts Monday to Friday and keeps the local time of day', () => {
    expect(iso(addBusinessDays(new Date('2026-01-13T15:00:00Z'), 2, tz))).toBe('2026-01-15T15:00:00.000Z'); // Tue → Thu
    expect(iso(addBusinessDays(new Date('2026-01-15T15:00:00Z'), 2, tz))).toBe('2026-01-19T15:00:00.000Z'); // Thu → Mon
    expect(iso(addBusinessDays(new Date('2026-01-16T15:00:00Z'), 1, tz))).toBe('2026-01-19T15:00:00.000Z'); // Fri → Mon
    expect(iso(addBusinessDays(new Date('2026-01-17T15:00:00Z'), 1, tz))).toBe('2026-01-19T15:00:00.000Z'); // Sat → Mon
    expect(iso(addBusinessDays(new Date('2026-01-12T15:00:00Z'), 5, tz))).toBe('2026-01-19T15:00:00.000Z'); // Mon → Mon
  });

  it('skips the weekend in the lead zone, not in UTC', () => {
    // Friday 20:00 in Los Angeles is already Saturday in UTC: one business day is Monday 20:00 local.
    const friLate = new Date('2026-01-17T04:00:00Z');
    expect(localTime(friLate, 'America/Los_Angeles').weekday).toBe('fri');
    expect(iso(addBusinessDays(friLate, 1, 'America/Los_Angeles'))).toBe('2026-01-20T04:00:00.000Z');
  });

  it('keeps the local time of day across a DST change', () => {
    const fri = new Date('2026-03-06T15:00:00Z'); // Fri 10:00 EST
    const mon = addBusinessDays(fri, 1, tz);
    expect(iso(mon)).toBe('2026-03-09T14:00:00.000Z'); // Mon 10:00 EDT
    expect(iso(addBusinessDays(new Date('2026-10-23T08:00:00Z'), 1, 'Europe/Berlin'))).toBe('2026-10-26T09:00:00.000Z'); // Fri 10:00 CEST → Mon 10:00 CET
  });

  it('counts each calendar day once when a weekday is 23 or 25 hours long (Africa/Cairo)', () => {
    // Cairo moves its clocks on Thursday night/Friday: Thu 29 Oct 2026 has 25 hours, Fri 24 Apr 2026 has 23.
    expect(iso(addBusinessDays(new Date('2026-10-28T21:30:00Z'), 1, 'Africa/Cairo'))).toBe('2026-10-29T22:30:00.000Z'); // Thu 00:30 → Fri 00:30
    expect(iso(addBusinessDays(new Date('2026-04-23T21:30:00Z'), 1, 'Africa/Cairo'))).toBe('2026-04-24T20:30:00.000Z'); // Thu 23:30 → Fri 23:30
  });
});
