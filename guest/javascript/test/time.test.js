import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Instant, TimeOfDay, parseWeekday } from '../src/sdk.js';
import { civilFromDays, daysFromCivil } from '../src/time.js';

test('instants round-trip through the calendar', () => {
  for (const text of ['1970-01-01T00:00:00Z', '2000-02-29T12:34:56Z', '2026-12-24T17:00:00Z', '1969-12-31T23:59:59Z']) {
    assert.equal(Instant.parse(text).toString(), text);
  }
  assert.equal(Instant.parse('1970-01-02T00:00:00Z').seconds, 86_400);
  assert.equal(Instant.parse('2026-11-27T00:00:00Z').dateTime().weekday, 'friday');
  assert.equal(Instant.parse('2000-01-01T00:00:00.5Z').nanoseconds, 500_000_000);
  assert.equal(Instant.parse('2026-12-24 17:00:00+00:00').toString(), '2026-12-24T17:00:00Z');
  for (let day = -500_000; day < 500_000; day += 7) {
    const [y, m, d] = civilFromDays(day);
    assert.equal(daysFromCivil(y, m, d), day);
  }
});

test('the WIT instant (bigint seconds) reads as a calendar date', () => {
  const t = new Instant(1_795_539_600n, 0).dateTime();
  assert.deepEqual([t.year, t.month, t.day, t.hour, t.minute, t.weekday], [2026, 11, 24, 17, 0, 'tuesday']);
  assert.equal(t.timeOfDay.toString(), '17:00');
  assert.ok(new Instant(1, 0).compare(new Instant(1, 5)) < 0);
});

test('bad times say what is wrong', () => {
  const why = (text) => {
    try {
      Instant.parse(text);
    } catch (e) {
      return e;
    }
  };
  assert.equal(why('2026-02-30T00:00:00Z'), '`2026-02-30T00:00:00Z` is not a UTC time such as `2026-12-24T17:00:00Z`: no such date');
  assert.match(why('2026-12-24T17:00:00+01:00'), /UTC, ending in `Z`$/);
  assert.match(why('yesterday'), /: give the time in UTC/);
  assert.match(why('99999999999-01-01T00:00:00Z'), /: bad year$/);
  assert.throws(() => TimeOfDay.parse('25:00'), /is not a time of day/);
  assert.throws(() => TimeOfDay.parse('1:00'), /is not a time of day/);
  assert.equal(TimeOfDay.parse('24:00').minutes, 1440);
  assert.equal(TimeOfDay.parse('+1:30').minutes, 90, 'as Rust parses u32');
  assert.equal(parseWeekday('Sat'), 'saturday');
  assert.throws(() => parseWeekday('caturday'), /^`caturday` is not a day of the week \(mon, tue, … sun\)$/);
});
