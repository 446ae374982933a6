/**
 * The repository as it is before the request, and the facts of its images (manifests,
 * config labels, referrers such as signatures and SBOMs). Each call is a host call, and an
 * image fact can cost the host a registry request: call only what the rule needs.
 * @module
 */
import { host } from './host.js';

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

/** Read-only view of the repository named in the request, as it is before the request. */
export const repository = {
  /**
   * Every tag of the repository with its digest, ordered by tag name.
   * @returns {{ tag: string, digest: string }[]}
   */
  listTags: () => host().repository.listTags(),
  /**
   * The digest `tag` points at, or `undefined` if the tag does not exist.
   * @param {string} tag
   * @returns {string | undefined}
   */
  digestOf: (tag) => host().repository.digestOf(tag),
  /**
   * The tags that point at `digest`, ordered by tag name.
   * @param {string} digest
   * @returns {string[]}
   */
  tagsOf: (digest) => host().repository.tagsOf(digest),
};

/** The facts of the repository's images. */
export const image = {
  /**
   * The manifest `digest`, or `undefined` if the host does not know it.
   * @param {string} digest
   * @returns {Manifest | undefined}
   */
  manifestOf: (digest) => host().image.manifestOf(digest),
  /**
   * The labels of the image `digest`'s config, ordered by key.
   * @param {string} digest
   * @returns {KeyValue[]}
   */
  labelsOf: (digest) => host().image.labelsOf(digest),
  /**
   * The artifacts that refer to `digest`, ordered by digest; only those of
   * `artifactType` if given.
   * @param {string} digest
   * @param {string} [artifactType]
   * @returns {Referrer[]}
   */
  referrersOf: (digest, artifactType) => host().image.referrersOf(digest, artifactType),
  /**
   * The value of label `key` of the image `digest`'s config.
   * @param {string} digest
   * @param {string} key
   * @returns {string | undefined}
   */
  label: (digest, key) => host().image.labelsOf(digest).find((kv) => kv.key === key)?.value,
  /**
   * Whether at least one artifact of `artifactType` refers to `digest`.
   * @param {string} digest
   * @param {string} artifactType
   */
  hasReferrer: (digest, artifactType) => host().image.referrersOf(digest, artifactType).length > 0,
};

/**
 * The value of annotation `key` of a manifest, descriptor or referrer.
 * @param {{ annotations: KeyValue[] }} item
 * @param {string} key
 * @returns {string | undefined}
 */
export function annotation(item, key) {
  return item.annotations.find((kv) => kv.key === key)?.value;
}
