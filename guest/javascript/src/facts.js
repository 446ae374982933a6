/**
 * The repository as it is before the request, and the facts of its images (manifests,
 * config labels, referrers such as signatures and SBOMs). Each call is a host call, and an
 * image fact can cost the host a registry request: call only what the rule needs.
 *
 * The repository is asked questions, never listed whole: the tags matching a pattern
 * (`repository.tagsMatching`, `repository.newest`), a tag's digest or history, the tags of a
 * digest. The host answers them from its index at the same cost whatever the size of the
 * repository.
 * @module
 */
import { host, hostError } from './host.js';
import { Instant } from './time.js';

/** @typedef {{ key: string, value: string }} KeyValue */
/** @typedef {{ os: string, architecture: string, variant: string | undefined }} Platform */
/**
 * @typedef {object} Descriptor
 * @property {string} mediaType
 * @property {string} digest
 * @property {bigint} size
 * @property {string | undefined} artifactType
 * @property {KeyValue[]} annotations
 * @property {Platform | undefined} platform
 */
/**
 * @typedef {object} Manifest
 * @property {string} mediaType
 * @property {string | undefined} artifactType
 * @property {Descriptor | undefined} config
 * @property {Descriptor[]} layers
 * @property {Descriptor[]} manifests
 * @property {Descriptor | undefined} subject
 * @property {KeyValue[]} annotations ordered by key
 */
/**
 * @typedef {object} Referrer
 * @property {string} digest
 * @property {string} mediaType
 * @property {string} artifactType empty when the referrer declares none
 * @property {KeyValue[]} annotations
 */

/**
 * @typedef {object} TagEntry
 * @property {string} tag
 * @property {string} digest
 */
/**
 * How `repository.findTags` orders its answer (the WIT enum `tag-order`, which
 * componentize-js passes as its case name): {@link TagOrder}.
 * @typedef {'name' | 'newest-first'} TagOrderName
 */
/**
 * A question about the repository's tags: which match `pattern`, in `order`, a page at a time.
 * @typedef {object} TagQuery
 * @property {string} pattern a regular expression the WHOLE tag must match (the host's syntax)
 * @property {TagOrderName} order
 * @property {number} limit the most entries to answer (u32); the host answers at most 1000
 * @property {string | undefined} [after] continue after this tag: the last entry of the
 *   previous page (of the same query)
 */
/**
 * When a tag was set, and by whom, as the hosts recorded it.
 * @typedef {object} Stamp
 * @property {Instant} at
 * @property {string | undefined} actor the actor's id; `undefined` for an anonymous actor
 */
/**
 * What the hosts know of a tag's past: only changes made through them.
 * @typedef {object} TagHistory
 * @property {Stamp} changed when the tag got the digest it points at now, and who set it
 * @property {Stamp | undefined} created when the tag was created, and who created it: the
 *   same as `changed` for a tag that never moved; `undefined` for a tag created before the
 *   records begin (and moved since)
 */

/**
 * The orders of `repository.findTags` (the WIT enum `tag-order`, as componentize-js passes it).
 * @readonly
 * @example
 * import { TagOrder, repository } from 'tagpolicy-guest';
 * const versions = String.raw`v?\d+(\.\d+)*`;
 * [...repository.tagsMatching(versions, TagOrder.NewestFirst)].map((e) => e.tag); // => ['v1.3.0', '1.2.10', '1.2.9']
 * [...repository.tagsMatching(versions, TagOrder.Name)].map((e) => e.tag); // => ['1.2.10', '1.2.9', 'v1.3.0']
 */
export const TagOrder = Object.freeze({
  /** By name, byte by byte, ascending: the order of a registry's tag list. */
  Name: /** @type {'name'} */ ('name'),
  /**
   * Newest version first: by the numbers in the tag, compared one after the other as
   * numbers, highest first (`1.10.0` before `1.9.3`, `2` before `1.12`, `1.2.3` before
   * `1.2`), then by name, descending. Text between the numbers does not order tags, so give
   * a pattern that matches only the tags you compare (`v?1\.2\.\d+`).
   */
  NewestFirst: /** @type {'newest-first'} */ ('newest-first'),
});

/** Tags a page holds when `repository.tagsMatching` reads a repository (the host's largest page). */
const PAGE = 1000;

/** @param {{ at: { seconds: bigint | number, nanoseconds: number }, actor: string | undefined }} stamp */
const toStamp = (stamp) => ({ at: new Instant(stamp.at.seconds, stamp.at.nanoseconds), actor: stamp.actor });

/**
 * Queries on the repository named in the request, as it is before the request. The host
 * answers each from its index at about the same cost whatever the size of the repository;
 * ask for what the rule needs, not for every tag.
 * @example
 * import { TagOrder, repository } from 'tagpolicy-guest';
 * repository.newest(String.raw`v?1\.2\.\d+`)?.tag; // => '1.2.10'
 * [...repository.tagsMatching(String.raw`pr-\d+`, TagOrder.Name)].map((e) => e.tag); // => ['pr-17', 'pr-18']
 * repository.historyOf('1.2.10')?.changed.actor; // => 'release-bot'
 */
export const repository = {
  /**
   * One page of the tags matching a query: see {@link TagQuery}. Most rules want
   * `tagsMatching` or `newest` instead.
   * @param {TagQuery} query
   * @returns {TagEntry[]}
   * @throws {Error} if the host refuses the query (an invalid pattern, a limit of 0): the
   *   pattern is the policy's own, and a policy that cannot ask its question must not answer
   *   (the host then denies, saying why)
   * @example
   * import { TagOrder, repository } from 'tagpolicy-guest';
   * const page = repository.findTags({ pattern: '.*', order: TagOrder.Name, limit: 2, after: undefined });
   * page.map((e) => [e.tag, e.digest.slice(0, 11)]); // => [['1.2.10', 'sha256:2222'], ['1.2.9', 'sha256:1111']]
   * const next = repository.findTags({ pattern: '.*', order: TagOrder.Name, limit: 2, after: page[1].tag });
   * next.map((e) => e.tag); // => ['latest', 'pr-17']
   */
  findTags(query) {
    const { pattern, order, limit, after } = query;
    try {
      return host().repository.findTags({ pattern, order, limit, after });
    } catch (error) {
      throw new Error(`the query \`${pattern}\` was refused: ${hostError(error)}`);
    }
  },
  /**
   * How many tags the repository has (the WIT `u64`, as a number).
   * @returns {number}
   * @example
   * import { repository } from 'tagpolicy-guest';
   * repository.countTags(); // => 6
   */
  countTags: () => Number(host().repository.countTags()),
  /**
   * The digest `tag` points at, or `undefined` if the tag does not exist.
   * @param {string} tag
   * @returns {string | undefined}
   * @example
   * import { repository } from 'tagpolicy-guest';
   * repository.digestOf('latest') === repository.digestOf('v1.3.0'); // => true
   * repository.digestOf('1.3.1'); // => undefined
   */
  digestOf: (tag) => host().repository.digestOf(tag),
  /**
   * The tags that point at `digest`, ordered by tag name.
   * @param {string} digest
   * @returns {string[]}
   * @example
   * import { repository } from 'tagpolicy-guest';
   * repository.tagsOf(repository.digestOf('latest')); // => ['latest', 'v1.3.0']
   */
  tagsOf: (digest) => host().repository.tagsOf(digest),
  /**
   * What the hosts recorded of `tag` (times as {@link Instant}s), or `undefined` when the tag
   * does not exist or its last change is not known (it is older than the records, or it was
   * changed around the hosts).
   * @param {string} tag
   * @returns {TagHistory | undefined}
   * @example
   * import { repository } from 'tagpolicy-guest';
   * const history = repository.historyOf('latest');
   * [history.changed.at.toString(), history.changed.actor]; // => ['2026-12-22T10:00:00Z', 'ci-bot']
   * history.created.actor; // => undefined
   * repository.historyOf('pr-17'); // => undefined
   */
  historyOf(tag) {
    const history = host().repository.historyOf(tag);
    if (history === undefined) return undefined;
    return {
      changed: toStamp(history.changed),
      created: history.created === undefined ? undefined : toStamp(history.created),
    };
  },
  /**
   * The tag matching `pattern` (whole) with the highest version (see {@link TagOrder}), if
   * any: `newest('v?1\\.2\\.\\d+')` is the newest `1.2.x` release, however many tags there
   * are.
   * @param {string} pattern
   * @returns {TagEntry | undefined}
   * @example
   * import { repository } from 'tagpolicy-guest';
   * repository.newest(String.raw`v?1\.2\.\d+`)?.tag; // => '1.2.10'
   * repository.newest(String.raw`v?2\.\d+\.\d+`); // => undefined
   */
  newest: (pattern) =>
    repository.findTags({ pattern, order: TagOrder.NewestFirst, limit: 1, after: undefined })[0],
  /**
   * Every tag matching `pattern` (whole), in `order`, read from the host a page at a time as
   * the iterator is consumed: stop early and the rest is never read.
   * @param {string} pattern
   * @param {TagOrderName} order
   * @returns {Generator<TagEntry, void, undefined>}
   * @example
   * import { TagOrder, repository } from 'tagpolicy-guest';
   * const open = [];
   * for (const { tag } of repository.tagsMatching(String.raw`pr-\d+`, TagOrder.NewestFirst)) {
   *   open.push(tag);
   * }
   * open; // => ['pr-18', 'pr-17']
   */
  *tagsMatching(pattern, order) {
    /** @type {string | undefined} */
    let after;
    for (;;) {
      const page = repository.findTags({ pattern, order, limit: PAGE, after });
      yield* page;
      if (page.length < PAGE) return;
      after = page[page.length - 1].tag;
    }
  },
};

/**
 * The facts of the repository's images: manifests, config labels, referrers. Each call can
 * cost the host a registry request; call only what the rule needs.
 * @example
 * import { image } from 'tagpolicy-guest';
 * const pushed = request.push().digest;
 * image.label(pushed, 'maintainer'); // => 'team@example.com'
 * image.hasReferrer(pushed, 'application/vnd.dev.cosign.artifact.sig.v1+json'); // => true
 */
export const image = {
  /**
   * The manifest `digest`, or `undefined` if the host does not know it.
   * @param {string} digest
   * @returns {Manifest | undefined}
   * @example
   * import { annotation, image } from 'tagpolicy-guest';
   * const manifest = image.manifestOf(request.push().digest);
   * manifest.mediaType; // => 'application/vnd.oci.image.manifest.v1+json'
   * annotation(manifest, 'org.opencontainers.image.revision'); // => '4f2a9c1'
   */
  manifestOf: (digest) => host().image.manifestOf(digest),
  /**
   * The labels of the image `digest`'s config, ordered by key.
   * @param {string} digest
   * @returns {KeyValue[]}
   * @example
   * import { image } from 'tagpolicy-guest';
   * image.labelsOf(request.push().digest).map((kv) => kv.key); // => ['maintainer', 'org.opencontainers.image.source']
   */
  labelsOf: (digest) => host().image.labelsOf(digest),
  /**
   * The artifacts that refer to `digest`, ordered by digest; only those of
   * `artifactType` if given.
   * @param {string} digest
   * @param {string} [artifactType]
   * @returns {Referrer[]}
   * @example
   * import { image } from 'tagpolicy-guest';
   * image.referrersOf(request.push().digest).map((r) => r.artifactType); // => ['application/vnd.dev.cosign.artifact.sig.v1+json']
   * image.referrersOf(request.push().digest, 'application/spdx+json'); // => []
   */
  referrersOf: (digest, artifactType) => host().image.referrersOf(digest, artifactType),
  /**
   * The value of label `key` of the image `digest`'s config.
   * @param {string} digest
   * @param {string} key
   * @returns {string | undefined}
   * @example
   * import { image } from 'tagpolicy-guest';
   * image.label(request.push().digest, 'org.opencontainers.image.source'); // => 'https://git.example.com/team/app'
   * image.label(request.push().digest, 'org.opencontainers.image.licenses'); // => undefined
   */
  label: (digest, key) => host().image.labelsOf(digest).find((kv) => kv.key === key)?.value,
  /**
   * Whether at least one artifact of `artifactType` refers to `digest`.
   * @param {string} digest
   * @param {string} artifactType
   * @returns {boolean}
   * @example
   * import { image } from 'tagpolicy-guest';
   * image.hasReferrer(request.push().digest, 'application/vnd.dev.cosign.artifact.sig.v1+json'); // => true
   */
  hasReferrer: (digest, artifactType) => host().image.referrersOf(digest, artifactType).length > 0,
};

/**
 * The value of annotation `key` of a manifest, descriptor or referrer.
 * @param {{ annotations: KeyValue[] }} item
 * @param {string} key
 * @returns {string | undefined}
 * @example
 * import { annotation, image } from 'tagpolicy-guest';
 * const manifest = image.manifestOf(request.push().digest);
 * annotation(manifest, 'org.opencontainers.image.revision'); // => '4f2a9c1'
 * annotation(manifest, 'org.opencontainers.image.version'); // => undefined
 */
export function annotation(item, key) {
  return item.annotations.find((kv) => kv.key === key)?.value;
}
