/**
 * What a policy's own bug looks like to its author: the error and the line of the policy's
 * source that raised it, `TypeError: request.tagOf is not a function (policy.js:17)`, as the
 * Python SDK reports `AttributeError: … (policy.py, line 17)`.
 *
 * A component runs one bundle, so the engine's stack names bundle lines. `tagpolicy build`
 * reads the bundler's source map and appends to the bundle a table from bundle lines to the
 * policy's files and lines (only the policy's own: frames in the SDK have no entry, so the
 * innermost frame of the author's code is the one named). The mapping is done when the
 * component is built, not by the host: the host never parses a policy's source map, and the
 * table is part of the snapshotted heap, bounded by the bundle's size (see `lineTable` in
 * host/cli/src/build/javascript.rs).
 * @module
 */

/** Where `tagpolicy build` puts the table; absent outside a component (node tests). */
export const LINE_TABLE = Symbol.for('tagpolicy.lineTable');

/**
 * The table as the build writes it: `sources` are paths relative to the policy's folder;
 * `lines[n]` lists, for bundle line n + 1, `[column, source, line]` triples (columns from 0,
 * lines from 1) sorted by column, or is empty when the line is not the policy's own.
 * @typedef {{ sources: string[], lines: Array<Array<[number, number, number]>> }} LineTable
 */

/** Longest description kept, in characters: the host cuts reasons anyway. */
const MAX_DESCRIPTION = 900;

/**
 * `Name: message (file:line)` for a thrown value: the innermost stack frame that maps to the
 * policy's own source, else no place.
 * @param {unknown} error
 * @param {LineTable | undefined} [table] defaults to the one the build appended
 * @returns {string}
 */
export function describe(error, table = /** @type {any} */ (globalThis)[LINE_TABLE]) {
  let text;
  let stack = '';
  if (error instanceof Error) {
    text = `${error.name}: ${error.message}`;
    stack = typeof error.stack === 'string' ? error.stack : '';
  } else {
    text = `${typeof error === 'string' ? error : safeString(error)} (thrown, not an Error)`;
  }
  const place = table ? firstOwnPlace(stack, table) : undefined;
  if (place) text += ` (${place})`;
  return text.length > MAX_DESCRIPTION ? `${text.slice(0, MAX_DESCRIPTION)}…` : text;
}

/**
 * The first frame of `stack` (SpiderMonkey's `name@file:line:column` lines, or V8's
 * `at name (file:line:column)`) that the table maps to a source, as `file:line`.
 * @param {string} stack
 * @param {LineTable} table
 * @returns {string | undefined}
 */
function firstOwnPlace(stack, table) {
  for (const frame of stack.split('\n').slice(0, 64)) {
    const found = /:(\d+):(\d+)\)?\s*$/.exec(frame);
    if (!found) continue;
    const segments = table.lines?.[Number(found[1]) - 1];
    if (!Array.isArray(segments) || segments.length === 0) continue;
    const column = Number(found[2]) - 1;
    let at = segments[0];
    for (const segment of segments) if (segment[0] <= column) at = segment;
    const source = table.sources?.[at[1]];
    if (typeof source === 'string') return `${source}:${at[2]}`;
  }
  return undefined;
}

/** @param {unknown} value */
function safeString(value) {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
