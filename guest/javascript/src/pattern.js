/**
 * Regular expressions, compiled and matched by the HOST (the RE2-style syntax of Rust's
 * `regex` crate), so that settings mean the same in a policy written in any language. Never
 * use JavaScript's `RegExp` for patterns from settings: its dialect differs (`(?i)` fails,
 * look-ahead works).
 * @module
 */
import { host, hostError } from './host.js';

/**
 * A regular expression matched against the WHOLE text, validated when it is created. In
 * settings, read with `settings.pattern()`; `String(pattern)` is the pattern as written.
 * @example
 * import { Pattern } from 'tagpolicy-guest';
 * const release = new Pattern(String.raw`v?\d+\.\d+\.\d+`);
 * release.matches('v1.3.1'); // => true
 * release.matches('v1.3.1-rc1'); // => false
 */
export class Pattern {
  #source;

  /**
   * Check `source` with the host.
   * @param {string} source
   * @throws {string} `` `[a-` is not a valid regex: unclosed character class ``
   */
  constructor(source) {
    try {
      host().patterns.fullMatch(source, '');
    } catch (error) {
      throw `\`${source}\` is not a valid regex: ${hostError(error)}`;
    }
    this.#source = source;
  }

  /**
   * Whether the pattern matches all of `text`.
   * @param {string} text
   * @returns {boolean}
   * @example
   * import { Pattern } from 'tagpolicy-guest';
   * const pr = new Pattern(String.raw`pr-\d+`);
   * request.changes().map((change) => pr.matches(change.tag)); // => [false, false]
   */
  matches(text) {
    try {
      return host().patterns.fullMatch(this.#source, text);
    } catch (error) {
      // Validated when created; if the host refuses it now, stop (the host then denies)
      // rather than guess an answer.
      throw new Error(`pattern \`${this.#source}\` stopped working: ${hostError(error)}`);
    }
  }

  /** The pattern as written. */
  get source() {
    return this.#source;
  }

  /**
   * The pattern as written, for messages.
   * @returns {string}
   * @example
   * import { Pattern } from 'tagpolicy-guest';
   * `tags matching \`${new Pattern('latest|stable')}\` are protected`; // => 'tags matching `latest|stable` are protected'
   */
  toString() {
    return this.#source;
  }
}

/**
 * A list of patterns. The host compiles the list once, as a set, when it is created (in
 * `configure`); matching a text is then one host call for the whole list. In settings, read
 * with `settings.patterns()`; iterate over it for its patterns.
 * @example
 * import { Patterns } from 'tagpolicy-guest';
 * const mutable = new Patterns(['latest', String.raw`pr-\d+`]);
 * mutable.length; // => 2
 * [...mutable].map(String); // => ['latest', 'pr-\\d+']
 */
export class Patterns {
  /** @type {Pattern[]} */
  #patterns;
  /** @type {number | undefined} the host's handle of the prepared set; none when empty */
  #set;

  /**
   * Prepare `patterns` as a set with the host.
   * @param {Iterable<Pattern | string>} [patterns]
   * @throws {string} the host's error, naming the invalid pattern
   */
  constructor(patterns = []) {
    this.#patterns = [...patterns].map((p) => (p instanceof Pattern ? p : new Pattern(p)));
    if (this.#patterns.length > 0) {
      try {
        this.#set = host().patterns.prepareSet(this.#patterns.map((p) => p.source));
      } catch (error) {
        throw hostError(error);
      }
    }
  }

  /**
   * The first pattern that matches all of `text`.
   * @param {string} text
   * @returns {Pattern | undefined}
   * @example
   * import { Patterns } from 'tagpolicy-guest';
   * const mutable = new Patterns(['latest', String.raw`pr-\d+`]);
   * mutable.firstMatch('pr-17')?.source; // => 'pr-\\d+'
   * mutable.firstMatch('1.3.1'); // => undefined
   */
  firstMatch(text) {
    if (this.#set === undefined) return undefined;
    let index;
    try {
      index = host().patterns.firstInSet(this.#set, text);
    } catch (error) {
      // Prepared when the settings were read; see `Pattern.matches`.
      throw new Error(`pattern set stopped working: ${hostError(error)}`);
    }
    return index === undefined ? undefined : this.#patterns[index];
  }

  /**
   * Whether any pattern matches all of `text`.
   * @param {string} text
   * @returns {boolean}
   * @example
   * import { Patterns } from 'tagpolicy-guest';
   * new Patterns(['latest', String.raw`pr-\d+`]).anyMatch('latest'); // => true
   */
  anyMatch(text) {
    return this.firstMatch(text) !== undefined;
  }

  /**
   * Whether the list has no pattern (then nothing matches).
   * @returns {boolean}
   * @example
   * import { Patterns } from 'tagpolicy-guest';
   * new Patterns().isEmpty(); // => true
   */
  isEmpty() {
    return this.#patterns.length === 0;
  }

  /** How many patterns the list has. */
  get length() {
    return this.#patterns.length;
  }

  /** The patterns, in order. */
  [Symbol.iterator]() {
    return this.#patterns[Symbol.iterator]();
  }
}
