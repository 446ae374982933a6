/**
 * Reading settings: the operator's JSON checked against a description of the expected
 * shape, with errors that name the field path exactly like the Rust SDK (serde):
 * `settings.owners[0].who: unknown field `who`, expected `pattern` or `actors``.
 *
 * A reader is a function `(value, path) => result`. It refuses a value by throwing a string
 * (the reader's caller adds the path) or a {@link SettingsError}.
 * @module
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * const read = s.object('Settings', {
 *   owners: s.list(s.object('Owner', { pattern: s.pattern(), actors: s.list(s.string()) })),
 *   exempt: s.optional(s.list(s.string())),
 * });
 * const settings = s.parseSettings('{"owners": [{"pattern": "v.*", "actors": ["release-bot"]}]}', read);
 * settings.owners[0].actors; // => ['release-bot']
 * let error;
 * try {
 *   s.parseSettings('{"owners": [{"pattern": "v.*", "who": "release-bot"}]}', read);
 * } catch (thrown) {
 *   error = thrown.message;
 * }
 * error; // => 'settings.owners[0].who: unknown field `who`, expected `pattern` or `actors`'
 */
import { Pattern, Patterns } from './pattern.js';
import { Instant, Period, TimeOfDay, parseWeekday } from './time.js';

/** @typedef {(string | number)[]} Path keys and indexes from the root of the settings */

/**
 * @template T
 * @typedef {((value: unknown, path: Path) => T) & { missing?: () => T }} Reader
 * Reads one value; `missing`, if set, gives the value of an absent field.
 */

/**
 * Settings the policy refuses, with the path of the field that is wrong: `path` (keys and
 * indexes), `problem`, and the `message` `settings.PATH: PROBLEM`. A `configure` may throw
 * one, or simply a string that names the field.
 * @example
 * import { SettingsError } from 'tagpolicy-guest';
 * const error = new SettingsError(['owners', 0, 'actors'], 'empty; name at least one actor');
 * error.message; // => 'settings.owners[0].actors: empty; name at least one actor'
 */
export class SettingsError extends Error {
  /** @param {Path} path @param {string} problem */
  constructor(path, problem) {
    super(`${formatPath(path)}: ${problem}`);
    this.name = 'SettingsError';
    this.path = path;
    this.problem = problem;
  }
}

/**
 * A path as errors show it: `settings`, `settings.owners[0].pattern`,
 * `settings.rules[0].labels.a.b`.
 * @param {Path} path
 * @returns {string}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * s.formatPath(['owners', 0, 'pattern']); // => 'settings.owners[0].pattern'
 * s.formatPath([]); // => 'settings'
 */
export function formatPath(path) {
  return `settings${path.map((key) => (typeof key === 'number' ? `[${key}]` : `.${key}`)).join('')}`;
}

/**
 * Read `value` at `path` with `reader`, turning a refusal thrown as a string into a
 * {@link SettingsError} at `path`.
 * @template T
 * @param {Reader<T>} reader
 * @param {unknown} value
 * @param {Path} [path]
 * @returns {T}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * let error;
 * try {
 *   s.readAt(s.u32(), -1, ['minTags']);
 * } catch (thrown) {
 *   error = thrown.message;
 * }
 * error; // => 'settings.minTags: invalid value: integer `-1`, expected u32'
 */
export function readAt(reader, value, path = []) {
  try {
    return reader(value, path);
  } catch (error) {
    if (typeof error === 'string') throw new SettingsError(path, error);
    throw error;
  }
}

/**
 * Parse the settings JSON text and read it with `reader` (usually an {@link object}).
 * @template T
 * @param {string} json
 * @param {Reader<T>} reader
 * @returns {T}
 * @throws {SettingsError}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * s.parseSettings('{"minTags": 3}', s.object('Settings', { minTags: s.u32() })); // => { minTags: 3 }
 */
export function parseSettings(json, reader) {
  let value;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new SettingsError([], error instanceof Error ? error.message : String(error));
  }
  return readAt(reader, value, []);
}

/** How serde names an unexpected value: `string "x"`, `integer `5``, `map`. */
function unexpected(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'sequence';
  switch (typeof value) {
    case 'string':
      return `string ${JSON.stringify(value)}`;
    case 'boolean':
      return `boolean \`${value}\``;
    case 'number':
      return Number.isInteger(value) ? `integer \`${value}\`` : `floating point \`${value}\``;
    default:
      return 'map';
  }
}

/** @param {unknown} value @param {string} expected */
const invalidType = (value, expected) => `invalid type: ${unexpected(value)}, expected ${expected}`;

/** `expected `a``, `expected `a` or `b``, `expected one of `a`, `b`, `c``, as serde says. */
function expectedOneOf(names, none) {
  const quoted = names.map((n) => `\`${n}\``);
  if (quoted.length === 0) return none;
  if (quoted.length === 1) return `expected ${quoted[0]}`;
  if (quoted.length === 2) return `expected ${quoted[0]} or ${quoted[1]}`;
  return `expected one of ${quoted.join(', ')}`;
}

/** @param {unknown} value */
const isMap = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

/**
 * A string.
 * @returns {Reader<string>}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * s.parseSettings('{"team": "web"}', s.object('Settings', { team: s.string() })).team; // => 'web'
 */
export function string() {
  return (value) => {
    if (typeof value !== 'string') throw invalidType(value, 'a string');
    return value;
  };
}

/**
 * `true` or `false`.
 * @returns {Reader<boolean>}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * s.parseSettings('{"strict": true}', s.object('Settings', { strict: s.boolean() })).strict; // => true
 */
export function boolean() {
  return (value) => {
    if (typeof value !== 'boolean') throw invalidType(value, 'a boolean');
    return value;
  };
}

/**
 * A whole number from 0 to 4294967295 (Rust's `u32`).
 * @returns {Reader<number>}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * s.parseSettings('{"minTags": 3}', s.object('Settings', { minTags: s.u32() })).minTags; // => 3
 */
export function u32() {
  return (value) => {
    if (typeof value !== 'number' || !Number.isInteger(value)) throw invalidType(value, 'u32');
    if (value < 0 || value > 0xffffffff) throw `invalid value: integer \`${value}\`, expected u32`;
    return value;
  };
}

/**
 * One of fixed strings (a Rust unit enum named `name`).
 * @template {string} V
 * @param {string} name
 * @param {readonly V[]} variants
 * @returns {Reader<V>}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * const read = s.object('Settings', { mode: s.oneOf('Mode', ['enforce', 'report']) });
 * s.parseSettings('{"mode": "report"}', read).mode; // => 'report'
 */
export function oneOf(name, variants) {
  return (value) => {
    // serde_json says only this for an enum written as anything but a string.
    if (typeof value !== 'string') throw 'expected value';
    if (!variants.includes(/** @type {V} */ (value))) {
      throw `unknown variant \`${value}\`, ${expectedOneOf(variants, 'there are no variants')}`;
    }
    return /** @type {V} */ (value);
  };
}

/**
 * A list whose items `item` reads; errors name the index (`mutable[1]`).
 * @template T
 * @param {Reader<T>} item
 * @returns {Reader<T[]>}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * s.parseSettings('["latest", "stable"]', s.list(s.string())); // => ['latest', 'stable']
 */
export function list(item) {
  return (value, path) => {
    if (!Array.isArray(value)) throw invalidType(value, 'a sequence');
    return value.map((v, i) => readAt(item, v, [...path, i]));
  };
}

/**
 * An object of any keys whose values `item` reads, as a `Map` ordered by key (like Rust's
 * `BTreeMap`: by code point, which is UTF-8 byte order); errors name the key.
 * @template T
 * @param {Reader<T>} item
 * @returns {Reader<Map<string, T>>}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * const owners = s.parseSettings('{"web": ["alice"], "api": ["bob"]}', s.map(s.list(s.string())));
 * [...owners.keys()]; // => ['api', 'web']
 */
export function map(item) {
  return (value, path) => {
    if (!isMap(value)) throw invalidType(value, 'a map');
    const entries = Object.entries(value).map(([k, v]) => [k, readAt(item, v, [...path, k])]);
    entries.sort(([a], [b]) => compareCodePoints(a, b));
    return new Map(/** @type {[string, T][]} */ (entries));
  };
}

/** @param {string} a @param {string} b */
function compareCodePoints(a, b) {
  const [x, y] = [[...a], [...b]];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/**
 * An object with exactly these fields (a Rust struct named `name` with
 * `deny_unknown_fields`): an unknown field is an error, a field is missing unless its reader
 * says what it is when absent ({@link optional}, {@link withDefault}). Fields are read in the
 * order written, so the first wrong one is reported, as serde does.
 * @template {Record<string, Reader<any>>} F
 * @param {string} name
 * @param {F} fields
 * @returns {Reader<{ [K in keyof F]: F[K] extends Reader<infer T> ? T : never }>}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * const read = s.object('Settings', { mutable: s.list(s.string()) });
 * let error;
 * try {
 *   s.parseSettings('{"mutabel": []}', read);
 * } catch (thrown) {
 *   error = thrown.message;
 * }
 * error; // => 'settings.mutabel: unknown field `mutabel`, expected `mutable`'
 */
export function object(name, fields) {
  const names = Object.keys(fields);
  return (value, path) => {
    if (!isMap(value)) throw invalidType(value, `struct ${name}`);
    /** @type {Record<string, unknown>} */
    const out = {};
    for (const [key, v] of Object.entries(value)) {
      if (!Object.hasOwn(fields, key)) {
        throw new SettingsError(
          [...path, key],
          `unknown field \`${key}\`, ${expectedOneOf(names, 'there are no fields')}`,
        );
      }
      out[key] = readAt(fields[key], v, [...path, key]);
    }
    for (const key of names) {
      if (Object.hasOwn(out, key)) continue;
      const missing = fields[key].missing;
      if (missing === undefined) throw `missing field \`${key}\``;
      out[key] = missing();
    }
    return /** @type {any} */ (out);
  };
}

/**
 * An optional value (Rust's `Option`): absent or `null` is `undefined`.
 * @template T
 * @param {Reader<T>} reader
 * @returns {Reader<T | undefined>}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * const read = s.object('Settings', { exempt: s.optional(s.string()) });
 * s.parseSettings('{}', read); // => { exempt: undefined }
 */
export function optional(reader) {
  /** @type {Reader<T | undefined>} */
  const read = (value, path) => (value === null ? undefined : reader(value, path));
  read.missing = () => undefined;
  return read;
}

/**
 * A field that takes `fallback` when absent (Rust's `#[serde(default)]`; `null` is still
 * read, and refused, by `reader`). A function `fallback` is called for each use.
 * @template T
 * @param {Reader<T>} reader
 * @param {T | (() => T)} fallback
 * @returns {Reader<T>}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * const read = s.object('Settings', { minTags: s.withDefault(s.u32(), 1) });
 * s.parseSettings('{}', read); // => { minTags: 1 }
 */
export function withDefault(reader, fallback) {
  /** @type {Reader<T>} */
  const read = (value, path) => reader(value, path);
  read.missing = () => (typeof fallback === 'function' ? /** @type {() => T} */ (fallback)() : fallback);
  return read;
}

/**
 * A regex, validated by the host: a {@link Pattern}.
 * @returns {Reader<Pattern>}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * const read = s.object('Settings', { protected: s.pattern() });
 * s.parseSettings(String.raw`{"protected": "v\\d+.*"}`, read).protected.matches('v1.3.1'); // => true
 */
export function pattern() {
  const text = string();
  return (value, path) => new Pattern(text(value, path));
}

/**
 * A list of regexes, prepared as a set by the host: a {@link Patterns}.
 * @returns {Reader<Patterns>}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * const read = s.object('Settings', { mutable: s.patterns() });
 * s.parseSettings(String.raw`{"mutable": ["latest", "pr-\\d+"]}`, read).mutable.anyMatch('pr-17'); // => true
 */
export function patterns() {
  const items = list(pattern());
  return (value, path) => new Patterns(items(value, path));
}

/**
 * `mon`…`sun` or a full day name, as a {@link Weekday}.
 * @returns {Reader<import('./time.js').Weekday>}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * s.parseSettings('["sat", "Sunday"]', s.list(s.weekday())); // => ['saturday', 'sunday']
 */
export function weekday() {
  const text = string();
  return (value, path) => parseWeekday(text(value, path));
}

/**
 * `HH:MM`, `00:00` to `24:00`, as a {@link TimeOfDay}.
 * @returns {Reader<TimeOfDay>}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * s.parseSettings('"17:30"', s.timeOfDay()).minutes; // => 1050
 */
export function timeOfDay() {
  const text = string();
  return (value, path) => TimeOfDay.parse(text(value, path));
}

/**
 * An RFC 3339 time in UTC, as an {@link Instant}.
 * @returns {Reader<Instant>}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * const read = s.object('Settings', { from: s.instant(), until: s.instant() });
 * const freeze = s.parseSettings('{"from": "2026-12-20T00:00:00Z", "until": "2027-01-04T00:00:00Z"}', read);
 * freeze.from.compare(request.time) <= 0 && request.time.compare(freeze.until) < 0; // => true
 */
export function instant() {
  const text = string();
  return (value, path) => Instant.parse(text(value, path));
}

/**
 * A period such as `15m` or `1h30m` (units d, h, m, s; at most 366 days), as a
 * {@link Period}.
 * @returns {Reader<Period>}
 * @example
 * import { settings as s } from 'tagpolicy-guest';
 * s.parseSettings('{"grace": "1h30m"}', s.object('Settings', { grace: s.period() })).grace.seconds; // => 5400
 */
export function period() {
  const text = string();
  return (value, path) => Period.parse(text(value, path));
}
