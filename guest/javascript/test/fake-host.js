// A fake host for node tests: records verdicts, serves a scripted repository and image
// facts, and matches patterns with JavaScript's RegExp. (Only here: inside a component the
// HOST matches, with its RE2-style dialect; a test must not depend on where they differ.)
import { setHost } from '../src/sdk.js';

/**
 * Install a fake host and answer it, to inspect and script.
 * The repository answers `find-tags` as the real host does (see wit/policy.wit and
 * host/engine/src/query.rs): whole-match patterns, name order byte by byte, newest first by
 * the numbers in the tag then by name (descending), pages after a cursor, at most 1000 per
 * call, an error for a limit of 0 or an invalid pattern. `calls.queries` records each query.
 * @param {{ repository?: string, actor?: {id?: string, groups?: string[]}, tags?: Record<string, string>,
 *   history?: Record<string, {changed: object, created?: object}>,
 *   manifests?: Record<string, object>, labels?: Record<string, {key: string, value: string}[]>,
 *   referrers?: Record<string, object[]> }} [world] `history` in the WIT shape (bigint seconds),
 *   answered only for tags that exist
 */
export function fakeHost(world = {}) {
  const calls = { verdicts: [], context: 0, sets: [], queries: [] };
  const compile = (pattern) => {
    try {
      return new RegExp(`^(?:${pattern})$`, 'u');
    } catch {
      throw { payload: INVALID };
    }
  };
  const tags = Object.entries(world.tags ?? {}).sort(([a], [b]) => byBytes(a, b));
  setHost({
    context: {
      repositoryName: () => (calls.context++, world.repository ?? 'team/app'),
      requestedBy: () => (calls.context++, { id: world.actor?.id, groups: world.actor?.groups ?? [] }),
    },
    repository: {
      findTags: (query) => {
        calls.queries.push({ ...query });
        if (query.limit === 0) throw { payload: 'limit: 0; ask for at least one tag' };
        const re = compile(query.pattern);
        let found = tags.filter(([tag]) => re.test(tag));
        if (query.order === 'name') {
          if (query.after !== undefined) found = found.filter(([tag]) => byBytes(tag, query.after) > 0);
        } else if (query.order === 'newest-first') {
          const key = ([tag]) => orderPart(versionKey(tag));
          found = found.map((entry) => [key(entry), entry]).sort(([a], [b]) => byBytes(b, a));
          if (query.after !== undefined) {
            const below = orderPart(versionKey(query.after));
            found = found.filter(([k]) => byBytes(k, below) < 0);
          }
          found = found.map(([, entry]) => entry);
        } else {
          throw new TypeError(`not a tag-order: ${query.order}`);
        }
        return found.slice(0, Math.min(query.limit, 1000)).map(([tag, digest]) => ({ tag, digest }));
      },
      countTags: () => BigInt(tags.length),
      digestOf: (tag) => world.tags?.[tag],
      tagsOf: (digest) => tags.filter(([, d]) => d === digest).map(([t]) => t),
      historyOf: (tag) => (Object.hasOwn(world.tags ?? {}, tag) ? world.history?.[tag] : undefined),
    },
    image: {
      manifestOf: (digest) => world.manifests?.[digest],
      labelsOf: (digest) => world.labels?.[digest] ?? [],
      referrersOf: (digest, type) =>
        (world.referrers?.[digest] ?? []).filter((r) => type === undefined || r.artifactType === type),
    },
    patterns: {
      fullMatch: (pattern, text) => compile(pattern).test(text),
      find: (pattern, text) => compile(`.*(?:${pattern}).*`).test(text),
      prepareSet: (patterns) => {
        patterns.forEach(compile);
        calls.sets.push(patterns.map(compile));
        return calls.sets.length - 1;
      },
      firstInSet: (set, text) => {
        if (!calls.sets[set]) throw { payload: `no set ${set}` };
        const index = calls.sets[set].findIndex((re) => re.test(text));
        return index < 0 ? undefined : index;
      },
    },
    verdict: {
      deny: (tag, reason) => calls.verdicts.push(['deny', tag, reason]),
      warn: (tag, reason) => calls.verdicts.push(['warn', tag, reason]),
      fail: (reason) => calls.verdicts.push(['fail', undefined, reason]),
    },
  });
  return calls;
}

/** Order two strings by their UTF-8 bytes, as the host (Rust) orders tags and keys. */
export function byBytes(a, b) {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * The host's version key of `tag` (host/engine/src/query.rs `version_key`): its shape (each
 * run of digits written `#`), its numbers (each as three digits of length and the digits
 * without leading zeros, so that byte order is numeric order), then the tag.
 * @param {string} tag
 */
export function versionKey(tag) {
  let shape = '';
  let numbers = '';
  for (const [, digits, other] of tag.matchAll(/([0-9]+)|([^0-9])/gu)) {
    if (digits === undefined) {
      shape += other;
    } else {
      const significant = digits.replace(/^0+/, '');
      shape += '#';
      numbers += String(significant.length).padStart(3, '0') + significant;
    }
  }
  return `${shape} ${numbers} ${tag}`;
}

/** The part of a version key that orders tags across shapes: the numbers, then the tag. */
function orderPart(key) {
  return key.slice(key.indexOf(' ') + 1);
}

/** What the fake host says of any invalid pattern. */
export const INVALID = 'invalid pattern (fake host)';

const DIGEST = (n) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
export { DIGEST };

/** A WIT request pushing `digest` to `tags` (`{tag: current}`), at `time` (RFC 3339 seconds). */
export function pushRequest(digest, tags, seconds = 0n) {
  return {
    operation: {
      tag: 'push',
      val: { digest, tags: Object.entries(tags).map(([tag, current]) => ({ tag, current })) },
    },
    time: { seconds: BigInt(seconds), nanoseconds: 0 },
  };
}

/** A WIT stamp: set at `seconds` (and `nanoseconds`) by `actor` (undefined: anonymous). */
export function stamp(seconds, actor, nanoseconds = 0) {
  return { at: { seconds: BigInt(seconds), nanoseconds }, actor };
}
