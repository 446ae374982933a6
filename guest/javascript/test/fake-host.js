// A fake host for node tests: records verdicts, serves a scripted repository and image
// facts, and matches patterns with JavaScript's RegExp. (Only here: inside a component the
// HOST matches, with its RE2-style dialect; a test must not depend on where they differ.)
import { setHost } from '../src/sdk.js';

/**
 * Install a fake host and answer it, to inspect and script.
 * @param {{ repository?: string, actor?: {id?: string, groups?: string[]}, tags?: Record<string, string>,
 *   manifests?: Record<string, object>, labels?: Record<string, {key: string, value: string}[]>,
 *   referrers?: Record<string, object[]> }} [world]
 */
export function fakeHost(world = {}) {
  const calls = { verdicts: [], context: 0, sets: [] };
  const compile = (pattern) => {
    try {
      return new RegExp(`^(?:${pattern})$`, 'u');
    } catch {
      throw { payload: INVALID };
    }
  };
  const tags = Object.entries(world.tags ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  setHost({
    context: {
      repositoryName: () => (calls.context++, world.repository ?? 'team/app'),
      requestedBy: () => (calls.context++, { id: world.actor?.id, groups: world.actor?.groups ?? [] }),
    },
    repository: {
      listTags: () => tags.map(([tag, digest]) => ({ tag, digest })),
      digestOf: (tag) => world.tags?.[tag],
      tagsOf: (digest) => tags.filter(([, d]) => d === digest).map(([t]) => t),
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
    },
  });
  return calls;
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
