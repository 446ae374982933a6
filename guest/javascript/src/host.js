/**
 * The seam between the SDK and the host. Every other SDK module reaches the host's
 * `tagpolicy:policy/*` imports through {@link host}, never directly: inside a component
 * `wit.js` installs the real imports; in node, tests install fakes with {@link setHost}.
 * @module
 */

/**
 * The host functions a policy can call, by interface (the names componentize-js gives the
 * WIT functions). Functions whose WIT result is `result<T, string>` return `T` or throw an
 * object whose `payload` is the error text.
 * @typedef {object} Host
 * @property {{ repositoryName(): string, requestedBy(): import('./request.js').Actor }} context
 * @property {{ findTags(query: RawTagQuery): import('./facts.js').TagEntry[], countTags(): bigint, digestOf(tag: string): string | undefined, tagsOf(digest: string): string[], historyOf(tag: string): RawTagHistory | undefined }} repository
 * @property {{ manifestOf(digest: string): import('./facts.js').Manifest | undefined, labelsOf(digest: string): import('./facts.js').KeyValue[], referrersOf(digest: string, artifactType?: string): import('./facts.js').Referrer[] }} image
 * @property {{ fullMatch(pattern: string, text: string): boolean, find(pattern: string, text: string): boolean, prepareSet(patterns: string[]): number, firstInSet(set: number, text: string): number | undefined }} patterns
 * @property {{ deny(tag: string | undefined, reason: string): void, warn(tag: string | undefined, reason: string): void, fail(reason: string): void }} verdict
 */

/**
 * The WIT `tag-query` as componentize-js passes it (`order` is the enum case's name).
 * @typedef {{ pattern: string, order: 'name' | 'newest-first', limit: number, after: string | undefined }} RawTagQuery
 */
/**
 * The WIT `tag-history` as componentize-js passes it (`s64` seconds are bigints).
 * @typedef {{ at: { seconds: bigint, nanoseconds: number }, actor: string | undefined }} RawStamp
 * @typedef {{ changed: RawStamp, created: RawStamp | undefined }} RawTagHistory
 */

/** @type {Host | undefined} */
let current;

/**
 * Install the host functions (done by `wit.js` in a component; by tests with fakes). A
 * policy never calls it; a node test of a policy does, before calling the policy.
 * @param {Host} functions
 * @example
 * import { Pattern, setHost } from 'tagpolicy-guest';
 * // A host that only matches patterns (with RegExp, not the real host's dialect):
 * setHost({ patterns: { fullMatch: (pattern, text) => new RegExp(`^(?:${pattern})$`).test(text) } });
 * new Pattern(String.raw`v\d+`).matches('v2'); // => true
 */
export function setHost(functions) {
  current = functions;
}

/**
 * The installed host functions.
 * @returns {Host}
 */
export function host() {
  if (current === undefined) {
    throw new Error('tagpolicy-guest: no host installed (in node, call setHost with fakes first)');
  }
  return current;
}

/**
 * The text of an error thrown by a host function: componentize-js throws an object whose
 * `payload` is the WIT `result`'s error value.
 * @param {unknown} error
 * @returns {string}
 */
export function hostError(error) {
  if (error !== null && typeof error === 'object' && 'payload' in error) {
    return String(error.payload);
  }
  return error instanceof Error ? error.message : String(error);
}
