/**
 * Reading settings: the operator's JSON checked against a description of the expected
 * shape, with errors that name the field path exactly like the Rust SDK (serde):
 * `settings.owners[0].who: unknown field `who`, expected `pattern` or `actors``.
 *
 * A reader is a function `(value, path) => result`. It refuses a value by throwing a string
 * (the reader's caller adds the path) or a {@link SettingsError}.
 * @module
 */
import { Pattern, Patterns } from './pattern.js';
import { Instant, Period, TimeOfDay, parseWeekday } from './time.js';

/** @typedef {(string | number)[]} Path keys and indexes from the root of the settings */

/**
 * @template T
 * @typedef {((value: unknown, path: Path) => T) & { missing?: () => T }} Reader
 * Reads one value; `missing`, if set, gives the value of an absent field.
 */

/** Settings the policy refuses, with the path of the field that is wrong. */
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
 * `settings`, `settings.owners[0].pattern`, `settings.rules[0].labels.a.b`.
 * @param {Path} path
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

/** @returns {Reader<string>} a string */
export function string() {
  return (value) => {
    if (typeof value !== 'string') throw invalidType(value, 'a string');
    return value;
  };
}

/** @returns {Reader<boolean>} `true` or `false` */
export function boolean() {
  return (value) => {
    if (typeof value !== 'boolean') throw invalidType(value, 'a boolean');
    return value;
  };
}

/** @returns {Reader<number>} a whole number from 0 to 4294967295 (Rust's `u32`) */
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
 */
export function withDefault(reader, fallback) {
  /** @type {Reader<T>} */
  const read = (value, path) => reader(value, path);
  read.missing = () => (typeof fallback === 'function' ? /** @type {() => T} */ (fallback)() : fallback);
  return read;
}

/** @returns {Reader<Pattern>} a regex, validated by the host */
export function pattern() {
  const text = string();
  return (value, path) => new Pattern(text(value, path));
}

/** @returns {Reader<Patterns>} a list of regexes, prepared as a set by the host */
export function patterns() {
  const items = list(pattern());
  return (value, path) => new Patterns(items(value, path));
}

/** @returns {Reader<import('./time.js').Weekday>} `mon`…`sun` or a full day name */
export function weekday() {
  const text = string();
  return (value, path) => parseWeekday(text(value, path));
}

/** @returns {Reader<TimeOfDay>} `HH:MM`, `00:00` to `24:00` */
export function timeOfDay() {
  const text = string();
  return (value, path) => TimeOfDay.parse(text(value, path));
}

/** @returns {Reader<Instant>} an RFC 3339 time in UTC */
export function instant() {
  const text = string();
  return (value, path) => Instant.parse(text(value, path));
}

/** @returns {Reader<Period>} a period such as `15m` or `1h30m` (units d, h, m, s; at most 366 days) */
export function period() {
  const text = string();
  return (value, path) => Period.parse(text(value, path));
}
