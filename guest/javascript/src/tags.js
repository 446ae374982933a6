/**
 * Tag grammar helpers shared by policies: releases (`1.2.3`, `v1.2.3`) and the series tags
 * that follow them (`1.2`, `1`, `v1.2`). Mirrors the Rust SDK's `tags` module.
 *
 * Numbers are canonical (no leading zeros, as in SemVer), so `1.02.3` is neither a release
 * nor a series tag. The optional `v` is not part of the version: `v1.2` and `1.2` name the
 * same series. Numbers are bigints, as they may use all 64 bits.
 *
 * {@link newestRelease} asks the host for the newest release of a series among the
 * repository's tags, at the same cost in a repository of any size.
 * @module
 */
import { TagOrder, repository } from './facts.js';

const U64_MAX = 0xffff_ffff_ffff_ffffn;

/**
 * A release version `major.minor.patch`, with bigint numbers; `String(version)` is
 * `1.2.3`.
 * @example
 * import { Version, release } from 'tagpolicy-guest';
 * release('v1.3.1'); // => new Version(1n, 3n, 1n)
 * String(new Version(1n, 3n, 0n)); // => '1.3.0'
 */
export class Version {
  /** @param {bigint} major @param {bigint} minor @param {bigint} patch */
  constructor(major, minor, patch) {
    this.major = major;
    this.minor = minor;
    this.patch = patch;
  }

  /**
   * Numeric order: negative if `this` is older than `other`, 0 if equal, positive if newer.
   * @param {Version} other
   * @returns {number}
   * @example
   * import { release } from 'tagpolicy-guest';
   * release('1.2.10').compare(release('1.2.9')); // => 1
   * ['1.2.10', '1.10.0', '1.9.3'].map(release).sort((a, b) => a.compare(b)).map(String); // => ['1.2.10', '1.9.3', '1.10.0']
   */
  compare(other) {
    for (const key of /** @type {const} */ (['major', 'minor', 'patch'])) {
      if (this[key] !== other[key]) return this[key] < other[key] ? -1 : 1;
    }
    return 0;
  }

  /**
   * Whether `other` is the same version.
   * @param {Version} other
   * @returns {boolean}
   * @example
   * import { release } from 'tagpolicy-guest';
   * release('v1.2.3').equals(release('1.2.3')); // => true
   */
  equals(other) {
    return this.compare(other) === 0;
  }

  /**
   * The version as `major.minor.patch`.
   * @returns {string}
   * @example
   * import { release } from 'tagpolicy-guest';
   * `newest release: ${release('v1.3.0')}`; // => 'newest release: 1.3.0'
   */
  toString() {
    return `${this.major}.${this.minor}.${this.patch}`;
  }
}

/**
 * A series: every release of a major version (`1`), or of a minor version (`1.2`), with
 * bigint numbers; `minor` is `undefined` for a major series.
 * @example
 * import { Series, series } from 'tagpolicy-guest';
 * series('v1.2'); // => new Series(1n, 2n)
 * series('1').minor; // => undefined
 */
export class Series {
  /** @param {bigint} major @param {bigint | undefined} [minor] */
  constructor(major, minor = undefined) {
    this.major = major;
    this.minor = minor;
  }

  /**
   * Whether `version` belongs to this series.
   * @param {Version} version
   * @returns {boolean}
   * @example
   * import { release, series } from 'tagpolicy-guest';
   * series('1.2').contains(release('1.2.10')); // => true
   * series('v1').contains(release('2.0.0')); // => false
   */
  contains(version) {
    return version.major === this.major && (this.minor === undefined || this.minor === version.minor);
  }

  /**
   * `1.2` or `1`; also a key for maps of series.
   * @returns {string}
   * @example
   * import { series } from 'tagpolicy-guest';
   * [String(series('v1.2')), String(series('1'))]; // => ['1.2', '1']
   */
  toString() {
    return this.minor === undefined ? `${this.major}` : `${this.major}.${this.minor}`;
  }
}

/**
 * The version of a release tag (`X.Y.Z` or `vX.Y.Z`); pre-releases such as `1.2.3-rc1` and
 * builds such as `1.2.3+b7` are not releases.
 * @param {string} tag
 * @returns {Version | undefined}
 * @example
 * import { release } from 'tagpolicy-guest';
 * String(release('v1.3.1')); // => '1.3.1'
 * [release('1.3.1-rc1'), release('1.03.1')]; // => [undefined, undefined]
 */
export function release(tag) {
  const n = numbers(tag);
  return n?.length === 3 ? new Version(n[0], n[1], n[2]) : undefined;
}

/**
 * The series a series tag names (`X`, `X.Y`, `vX`, `vX.Y`).
 * @param {string} tag
 * @returns {Series | undefined}
 * @example
 * import { series } from 'tagpolicy-guest';
 * String(series('v1.2')); // => '1.2'
 * series('1.2.3'); // => undefined
 */
export function series(tag) {
  const n = numbers(tag);
  if (n?.length === 1) return new Series(n[0]);
  if (n?.length === 2) return new Series(n[0], n[1]);
  return undefined;
}

/** A canonical number, as the pattern of a release tag spells it. */
const NUMBER = '(?:0|[1-9][0-9]*)';

/**
 * The pattern of the release tags of `series` (of every release for `undefined`), with or
 * without a leading `v`: `v?1\.2\.(?:0|[1-9][0-9]*)` for `1.2`.
 * @param {Series | undefined} series
 * @returns {string}
 * @example
 * import { releasePattern, repository, series } from 'tagpolicy-guest';
 * releasePattern(series('1.2')); // => String.raw`v?1\.2\.(?:0|[1-9][0-9]*)`
 * repository.newest(releasePattern(undefined))?.tag; // => 'v1.3.0'
 */
export function releasePattern(series) {
  if (series === undefined) return `v?${NUMBER}\\.${NUMBER}\\.${NUMBER}`;
  if (series.minor === undefined) return `v?${series.major}\\.${NUMBER}\\.${NUMBER}`;
  return `v?${series.major}\\.${series.minor}\\.${NUMBER}`;
}

/**
 * The newest release of `series` (of the whole repository for `undefined`) among the
 * repository's tags as they are before the request: a query of the host's index, read from
 * the newest down.
 * @param {Series | undefined} series
 * @returns {Version | undefined}
 * @example
 * import { newestRelease, series } from 'tagpolicy-guest';
 * String(newestRelease(series('1.2'))); // => '1.2.10'
 * String(newestRelease(undefined)); // => '1.3.0'
 * newestRelease(series('2')); // => undefined
 */
export function newestRelease(series) {
  const PAGE = 8;
  const pattern = releasePattern(series);
  /** @type {string | undefined} */
  let after;
  // The newest tag alone first (almost always a release); past tags whose numbers
  // overflow, pages of 8.
  let limit = 1;
  for (;;) {
    const page = repository.findTags({ pattern, order: TagOrder.NewestFirst, limit, after });
    // A tag the pattern matches is a release unless a number overflows: skip it.
    for (const entry of page) {
      const version = release(entry.tag);
      if (version !== undefined) return version;
    }
    if (page.length < limit) return undefined;
    after = page[page.length - 1].tag;
    limit = PAGE;
  }
}

/**
 * The dot-separated canonical numbers of `tag` after an optional `v`.
 * @param {string} tag
 * @returns {bigint[] | undefined}
 */
function numbers(tag) {
  const body = tag.startsWith('v') ? tag.slice(1) : tag;
  const out = [];
  for (const part of body.split('.')) {
    if (!/^(0|[1-9][0-9]*)$/.test(part)) return undefined;
    const value = BigInt(part);
    if (value > U64_MAX) return undefined;
    out.push(value);
  }
  return out;
}
