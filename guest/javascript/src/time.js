/**
 * The request's time in calendar terms (UTC), and the parsing of times in settings: RFC 3339
 * instants, weekdays, times of day and periods (`15m`). A policy has no clock; `request.time` is the only time
 * it sees, given by the host (a scenario fixes it, a gate uses its clock). Mirrors the Rust
 * SDK's `time` module, error texts included.
 * @module
 */

/**
 * The days of the week, Monday first, as {@link Weekday} names.
 * @example
 * import { WEEKDAYS } from 'tagpolicy-guest';
 * WEEKDAYS.indexOf(request.time.dateTime().weekday); // => 3
 */
export const WEEKDAYS = /** @type {const} */ ([
  'monday',
  'tuesday',
  'wednesday',
  'thursday',
  'friday',
  'saturday',
  'sunday',
]);

/** @typedef {typeof WEEKDAYS[number]} Weekday A day of the week, e.g. `'saturday'`. */

/** @param {string} text @returns {string} */
const asciiLower = (text) => text.replace(/[A-Z]/g, (c) => c.toLowerCase());

/**
 * Parse `mon`…`sun` or the full English name, in any case.
 * @param {string} text
 * @returns {Weekday}
 * @throws {string} why it is not a day
 * @example
 * import { parseWeekday } from 'tagpolicy-guest';
 * parseWeekday('Sat'); // => 'saturday'
 * request.time.dateTime().weekday === parseWeekday('thu'); // => true
 */
export function parseWeekday(text) {
  const lower = asciiLower(text);
  const day = WEEKDAYS.find((name) => lower === name || lower === name.slice(0, 3));
  if (day === undefined) throw `\`${text}\` is not a day of the week (mon, tue, … sun)`;
  return day;
}

/** Whether `text` is what Rust's `u32::from_str` accepts and its value (an optional `+`). */
function parseU32(text) {
  if (!/^\+?[0-9]+$/.test(text) || text === '+') return undefined;
  const value = Number(text);
  return value <= 0xffffffff ? value : undefined;
}

/**
 * A time of day, `HH:MM`, from `00:00` to `24:00` (the end of the day). In settings, read
 * with `settings.timeOfDay()`.
 * @example
 * import { TimeOfDay } from 'tagpolicy-guest';
 * const [opens, closes] = [TimeOfDay.parse('09:00'), TimeOfDay.parse('17:30')];
 * const now = request.time.dateTime().timeOfDay;
 * opens.minutes <= now.minutes && now.minutes < closes.minutes; // => true
 */
export class TimeOfDay {
  /** @param {number} minutes minutes since midnight, 0 to 1440 */
  constructor(minutes) {
    /** Minutes since midnight, 0 to 1440. */
    this.minutes = minutes;
  }

  /**
   * Parse `HH:MM`, `00:00` to `24:00`.
   * @param {string} text e.g. `09:30`
   * @returns {TimeOfDay}
   * @throws {string} why it is not a time of day
   * @example
   * import { TimeOfDay } from 'tagpolicy-guest';
   * TimeOfDay.parse('24:00').minutes; // => 1440
   * let error;
   * try {
   *   TimeOfDay.parse('9:30');
   * } catch (thrown) {
   *   error = thrown;
   * }
   * error; // => '`9:30` is not a time of day such as `09:30` (00:00 to 24:00)'
   */
  static parse(text) {
    const wrong = `\`${text}\` is not a time of day such as \`09:30\` (00:00 to 24:00)`;
    const colon = text.indexOf(':');
    if (colon < 0) throw wrong;
    const [h, m] = [text.slice(0, colon), text.slice(colon + 1)];
    // Rust measures UTF-8 bytes; anything not ASCII fails to parse below anyway.
    if (h.length !== 2 || m.length !== 2) throw wrong;
    const hours = parseU32(h);
    const minutes = parseU32(m);
    if (hours === undefined || minutes === undefined) throw wrong;
    if (minutes > 59 || hours > 24 || (hours === 24 && minutes > 0)) throw wrong;
    return new TimeOfDay(hours * 60 + minutes);
  }

  /**
   * The time as `HH:MM`.
   * @returns {string}
   * @example
   * import { TimeOfDay } from 'tagpolicy-guest';
   * String(new TimeOfDay(9 * 60 + 5)); // => '09:05'
   */
  toString() {
    const pad = (n) => String(n).padStart(2, '0');
    return `${pad(Math.floor(this.minutes / 60))}:${pad(this.minutes % 60)}`;
  }
}

/**
 * A date and time in UTC, to the second.
 * @typedef {object} DateTime
 * @property {number} year
 * @property {number} month 1 to 12
 * @property {number} day 1 to 31
 * @property {number} hour
 * @property {number} minute
 * @property {number} second
 * @property {Weekday} weekday
 * @property {TimeOfDay} timeOfDay minutes since midnight
 */

/** @param {number} a @param {number} b */
const divFloor = (a, b) => Math.floor(a / b);
/** @param {number} a @param {number} b */
const modFloor = (a, b) => a - b * Math.floor(a / b);

/**
 * A point in time (UTC): seconds since the Unix epoch and nanoseconds within the second.
 * `request.time` is one; in settings, read with `settings.instant()`.
 * @example
 * import { Instant } from 'tagpolicy-guest';
 * [request.time.seconds, request.time.nanoseconds]; // => [1798131600, 0]
 * request.time.compare(Instant.parse('2027-01-01T00:00:00Z')) < 0; // => true
 */
export class Instant {
  /**
   * @param {number | bigint} seconds (the WIT `s64` arrives as a bigint)
   * @param {number} [nanoseconds]
   */
  constructor(seconds, nanoseconds = 0) {
    /** Seconds since 1970-01-01T00:00:00Z. */
    this.seconds = Number(seconds);
    /** Nanoseconds within the second. */
    this.nanoseconds = nanoseconds;
  }

  /**
   * Parse an RFC 3339 time in UTC, `2026-12-24T17:00:00Z` (a `+00:00` offset and fractions
   * of a second are accepted; other offsets are refused: say the time in UTC).
   * @param {string} text
   * @returns {Instant}
   * @throws {string} why it is not such a time
   * @example
   * import { Instant } from 'tagpolicy-guest';
   * Instant.parse('2026-12-24T17:00:00.5Z'); // => new Instant(1798131600, 500000000)
   */
  static parse(text) {
    const wrong = (why) =>
      `\`${text}\` is not a UTC time such as \`2026-12-24T17:00:00Z\`: ${why}`;
    const t = text.search(/[Tt ]/);
    if (t < 0) throw wrong('no `T`');
    const [dateText, rest] = [text.slice(0, t), text.slice(t + 1)];
    let time;
    if (rest.endsWith('Z') || rest.endsWith('z')) time = rest.slice(0, -1);
    else if (rest.endsWith('+00:00')) time = rest.slice(0, -6);
    else throw wrong('give the time in UTC, ending in `Z`');
    const number = (part, what) => {
      const value = /^[0-9]+$/.test(part) ? Number(part) : NaN;
      if (!(value <= 0xffffffff)) throw wrong(`bad ${what}`);
      return value;
    };
    const date = dateText.split('-');
    if (date.length !== 3) throw wrong('the date is YYYY-MM-DD');
    const year = number(date[0], 'year');
    const month = number(date[1], 'month');
    const day = number(date[2], 'day');
    const dot = time.indexOf('.');
    const [clockText, fraction] = dot < 0 ? [time, ''] : [time.slice(0, dot), time.slice(dot + 1)];
    const clock = clockText.split(':');
    if (clock.length !== 3) throw wrong('the time is HH:MM:SS');
    const hour = number(clock[0], 'hour');
    const minute = number(clock[1], 'minute');
    const second = number(clock[2], 'second');
    if (month < 1 || month > 12 || day === 0 || day > daysInMonth(year, month)) {
      throw wrong('no such date');
    }
    if (hour > 23 || minute > 59 || second > 59) throw wrong('no such time');
    const nanoseconds =
      fraction === '' ? 0 : number([...fraction].slice(0, 9).join('').padEnd(9, '0'), 'fraction');
    const days = daysFromCivil(year, month, day);
    return new Instant(days * 86_400 + hour * 3600 + minute * 60 + second, nanoseconds);
  }

  /**
   * The calendar date and time in UTC.
   * @returns {DateTime}
   * @example
   * const { year, month, day, hour, weekday } = request.time.dateTime();
   * [year, month, day, hour, weekday]; // => [2026, 12, 24, 17, 'thursday']
   */
  dateTime() {
    const days = divFloor(this.seconds, 86_400);
    const secondOfDay = modFloor(this.seconds, 86_400);
    const [year, month, day] = civilFromDays(days);
    const hour = Math.floor(secondOfDay / 3600);
    const minute = Math.floor(secondOfDay / 60) % 60;
    return {
      year,
      month,
      day,
      hour,
      minute,
      second: secondOfDay % 60,
      // 1970-01-01 was a Thursday.
      weekday: WEEKDAYS[modFloor(days + 3, 7)],
      timeOfDay: new TimeOfDay(hour * 60 + minute),
    };
  }

  /**
   * Order two instants: negative if `this` is earlier, 0 if equal, positive if later.
   * @param {Instant} other
   * @returns {number}
   * @example
   * import { repository } from 'tagpolicy-guest';
   * const { changed, created } = repository.historyOf('latest');
   * created.at.compare(changed.at) < 0; // => true
   */
  compare(other) {
    return this.seconds - other.seconds || this.nanoseconds - other.nanoseconds;
  }

  /**
   * The instant as RFC 3339, to the second.
   * @returns {string}
   * @example
   * request.time.toString(); // => '2026-12-24T17:00:00Z'
   */
  toString() {
    const t = this.dateTime();
    const pad = (n, width = 2) => String(n).padStart(width, '0');
    return `${pad(t.year, 4)}-${pad(t.month)}-${pad(t.day)}T${pad(t.hour)}:${pad(t.minute)}:${pad(t.second)}Z`;
  }
}

/** The units of a period, largest first, in seconds. */
const PERIOD_UNITS = /** @type {const} */ ([
  ['d', 86_400],
  ['h', 3_600],
  ['m', 60],
  ['s', 1],
]);
const I64_MAX = 0x7fff_ffff_ffff_ffffn;

/**
 * A length of time in settings: numbers with units `d`, `h`, `m` or `s`, largest first
 * (`90s`, `15m`, `1h30m`, `7d`), at most 366 days. In settings, read with `settings.period()`;
 * `String(period)` is the period as written.
 * @example
 * import { Period } from 'tagpolicy-guest';
 * const grace = Period.parse('1h30m');
 * [grace.seconds, String(grace)]; // => [5400, '1h30m']
 */
export class Period {
  /** The longest period, in seconds: 366 days. */
  static MAX_SECONDS = 366 * 86_400;

  /** @type {string} */
  #text;

  /**
   * @param {number} seconds
   * @param {string} text as written, for messages
   */
  constructor(seconds, text) {
    /** The length in seconds. */
    this.seconds = seconds;
    this.#text = text;
  }

  /**
   * Parse a period such as `1h30m`.
   * @param {string} text e.g. `15m`, `1h30m`
   * @returns {Period}
   * @throws {string} why it is not such a period
   * @example
   * import { Period } from 'tagpolicy-guest';
   * Period.parse('15m').seconds; // => 900
   * let error;
   * try {
   *   Period.parse('30m1h');
   * } catch (thrown) {
   *   error = thrown;
   * }
   * error; // => '`30m1h` is not a period such as `90s`, `15m`, `1h30m` or `7d`'
   */
  static parse(text) {
    const invalid = `\`${text}\` is not a period such as \`90s\`, \`15m\`, \`1h30m\` or \`7d\``;
    // The unit read last: each must be smaller than the one before.
    let [seconds, rest, last] = [0n, text, -1];
    while (rest !== '') {
      const digits = /^[0-9]*/.exec(rest)[0];
      // A number as Rust's `i64` parses it: some digits, at most i64::MAX.
      if (digits === '' || digits === rest || BigInt(digits) > I64_MAX) throw invalid;
      const position = PERIOD_UNITS.findIndex(([name]) => name === rest[digits.length]);
      if (position < 0 || position <= last) throw invalid;
      last = position;
      seconds += BigInt(digits) * BigInt(PERIOD_UNITS[position][1]);
      if (seconds > BigInt(Period.MAX_SECONDS)) throw `\`${text}\` is longer than 366 days`;
      rest = rest.slice(digits.length + 1);
    }
    if (seconds === 0n) throw `\`${text}\` is no time at all; give a period such as \`15m\``;
    return new Period(Number(seconds), text);
  }

  /**
   * Whether `since` is at most this long before `now` (and not after it), to the nanosecond.
   * @param {Instant} since
   * @param {Instant} now
   * @returns {boolean}
   * @example
   * import { Period, repository } from 'tagpolicy-guest';
   * const changed = repository.historyOf('latest').changed.at; // 2026-12-22T10:00:00Z
   * Period.parse('7d').contains(changed, request.time); // => true
   * Period.parse('1d').contains(changed, request.time); // => false
   */
  contains(since, now) {
    const age =
      (BigInt(now.seconds) - BigInt(since.seconds)) * 1_000_000_000n +
      BigInt(now.nanoseconds - since.nanoseconds);
    return age >= 0n && age <= BigInt(this.seconds) * 1_000_000_000n;
  }

  /**
   * The period as written, for messages.
   * @returns {string}
   * @example
   * import { Period } from 'tagpolicy-guest';
   * `pushed within ${Period.parse('1h30m')}`; // => 'pushed within 1h30m'
   */
  toString() {
    return this.#text;
  }
}

/** @param {number} year */
function isLeap(year) {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

/** @param {number} year @param {number} month */
function daysInMonth(year, month) {
  if (month === 2) return isLeap(year) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * Days since 1970-01-01 of a proleptic Gregorian date: count whole 400-year eras (146,097
 * days each) from 0000-03-01, then the years and days within the era, with March as the
 * first month so that February's leap day ends the year.
 * @param {number} year @param {number} month @param {number} day
 * @returns {number}
 */
export function daysFromCivil(year, month, day) {
  const y = month <= 2 ? year - 1 : year;
  const era = divFloor(y, 400);
  const yearOfEra = modFloor(y, 400);
  const monthFromMarch = (month + 9) % 12;
  const dayOfYear = divFloor(153 * monthFromMarch + 2, 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + divFloor(yearOfEra, 4) - divFloor(yearOfEra, 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/**
 * The inverse of {@link daysFromCivil}.
 * @param {number} days
 * @returns {[number, number, number]} year, month, day
 */
export function civilFromDays(days) {
  const d = days + 719_468;
  const era = divFloor(d, 146_097);
  const dayOfEra = modFloor(d, 146_097);
  const yearOfEra = divFloor(
    dayOfEra - divFloor(dayOfEra, 1460) + divFloor(dayOfEra, 36_524) - divFloor(dayOfEra, 146_096),
    365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + divFloor(yearOfEra, 4) - divFloor(yearOfEra, 100));
  const monthFromMarch = divFloor(5 * dayOfYear + 2, 153);
  const day = dayOfYear - divFloor(153 * monthFromMarch + 2, 5) + 1;
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  return [era * 400 + yearOfEra + (month <= 2 ? 1 : 0), month, day];
}
