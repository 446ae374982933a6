import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Instant, Period, TimeOfDay, parseWeekday, settings as s } from '../src/sdk.js';
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

/** The error `Period.parse` throws for `text`. */
const periodError = (text) => {
  try {
    Period.parse(text);
  } catch (e) {
    assert.equal(typeof e, 'string');
    return e;
  }
  assert.fail(`accepted ${JSON.stringify(text)}`);
};

test('periods read units largest first', () => {
  assert.equal(Period.parse('15m').seconds, 900);
  assert.equal(Period.parse('1h30m').seconds, 5400);
  assert.equal(Period.parse('7d').seconds, 604_800);
  assert.equal(Period.parse('90s').seconds, 90);
  assert.equal(Period.parse('1d2h3m4s').seconds, 93_784);
  assert.equal(Period.parse('366d').seconds, 366 * 86_400);
  assert.equal(Period.parse('365d23h59m60s').seconds, 366 * 86_400);
  assert.equal(Period.parse('0d15m').seconds, 900);
  assert.equal(Period.parse('0000000000000000000000015m').seconds, 900, 'leading zeros, as i64 parses');
  assert.equal(`${Period.parse('1h30m')}`, '1h30m', 'displays as written');
  assert.equal(`${Period.parse('90m')}`, '90m');
  for (const bad of ['', '15', 'm', '15x', '30m1h', '1m1m', '-5m', '0s', '367d', '99999999999999999999s', '1h 30m', '15M', '1.5h']) {
    assert.throws(() => Period.parse(bad), (e) => typeof e === 'string', JSON.stringify(bad));
  }
});

test('bad periods say why, in the Rust SDK\'s words', () => {
  const invalid = (text) => `\`${text}\` is not a period such as \`90s\`, \`15m\`, \`1h30m\` or \`7d\``;
  for (const text of ['15', 'm', '15x', '30m1h', '1m1m', '-5m', '1h 30m', '15M', '5x400d', '9223372036854775808s']) {
    assert.equal(periodError(text), invalid(text));
  }
  assert.equal(periodError('0s'), '`0s` is no time at all; give a period such as `15m`');
  assert.equal(periodError(''), '`` is no time at all; give a period such as `15m`');
  assert.equal(periodError('0d0h'), '`0d0h` is no time at all; give a period such as `15m`');
  for (const text of ['367d', '366d1s', '8785h', '9223372036854775807s', '9223372036854775807d', '400d5x']) {
    assert.equal(periodError(text), `\`${text}\` is longer than 366 days`);
  }
});

test('a period contains the times at most that long before now, to the nanosecond', () => {
  const period = Period.parse('15m');
  const at = (seconds, nanoseconds = 0) => new Instant(seconds, nanoseconds);
  assert.ok(period.contains(at(1000), at(1900)));
  assert.ok(period.contains(at(1000), at(1000)));
  assert.ok(!period.contains(at(1000), at(1901)));
  assert.ok(!period.contains(at(1000), at(999)), 'not before it began');
  // Seconds of today's instants times 10^9 are beyond a double's precision.
  const t = 1_800_000_000;
  assert.ok(period.contains(at(t, 1), at(t + 900, 1)));
  assert.ok(!period.contains(at(t, 1), at(t + 900, 2)));
  assert.ok(period.contains(at(t, 2), at(t + 900, 1)));
  assert.ok(!period.contains(at(t, 2), at(t, 1)), 'a nanosecond before it began');
  assert.ok(period.contains(at(t, 999_999_999), at(t + 1, 0)));
  assert.ok(period.contains(new Instant(1_800_000_000n, 5), new Instant(1_800_000_899n, 999_999_999)));
});

test('settings read a period, naming the field', () => {
  const Settings = s.object('Settings', { grace: s.optional(s.object('Grace', { period: s.period() })) });
  assert.equal(s.parseSettings('{"grace":{"period":"1h30m"}}', Settings).grace.period.seconds, 5400);
  assert.equal(s.parseSettings('{"grace":null}', Settings).grace, undefined);
  const error = (json) => {
    try {
      s.parseSettings(json, Settings);
    } catch (e) {
      return e.message;
    }
  };
  assert.equal(error('{"grace":{"period":"15x"}}'), 'settings.grace.period: `15x` is not a period such as `90s`, `15m`, `1h30m` or `7d`');
  assert.equal(error('{"grace":{"period":900}}'), 'settings.grace.period: invalid type: integer `900`, expected a string');
  assert.equal(error('{"grace":{}}'), 'settings.grace: missing field `period`');
});
