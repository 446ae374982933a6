/**
 * One view over every kind of request: the tags it touches and how, who asks and where.
 * @module
 */
import { host } from './host.js';
import { Instant } from './time.js';

/**
 * Who asks, as established by the host.
 * @typedef {{ id: string | undefined, groups: string[] }} Actor
 */

/**
 * The pushed digest and its tags, each with the digest it points at before the push.
 * @typedef {{ digest: string, tags: { tag: string, current: string | undefined }[] }} Push
 */

/**
 * The request as the host passes it (WIT `request`).
 * @typedef {object} RawRequest
 * @property {{ tag: 'push', val: Push } | { tag: 'delete-tags', val: { tag: string, current: string | undefined }[] } | { tag: 'delete-manifest', val: { digest: string, tags: string[] } }} operation
 * @property {{ seconds: bigint | number, nanoseconds: number }} time
 */

/**
 * How a request changes one tag: `create` (a push to a tag that does not exist yet),
 * `move` (a push that points an existing tag at another digest), `identical` (a push of
 * the digest the tag already points at) or `delete` (directly or by deleting the manifest).
 * @typedef {'create' | 'move' | 'identical' | 'delete'} ChangeKind
 */

const VERBS = { create: 'create', move: 'move', identical: 're-push', delete: 'delete' };

/**
 * One tag touched by a request: `tag`, `kind`, and the digests `from` and `to`.
 * @example
 * const change = request.changes()[1];
 * [change.tag, change.kind, change.from.slice(0, 11), change.to.slice(0, 11)]; // => ['latest', 'move', 'sha256:3333', 'sha256:7777']
 */
export class Change {
  /**
   * @param {string} tag
   * @param {ChangeKind} kind
   * @param {string | undefined} from the digest before the request (none if the tag is new)
   * @param {string | undefined} to the digest after the request (none for a deletion)
   */
  constructor(tag, kind, from, to) {
    this.tag = tag;
    this.kind = kind;
    this.from = from;
    this.to = to;
  }

  /**
   * Whether the tag ends up exactly where it was.
   * @returns {boolean}
   * @example
   * request.changes().map((change) => change.isIdentical()); // => [false, false]
   */
  isIdentical() {
    return this.kind === 'identical';
  }

  /**
   * The verb for messages: "create", "move", "re-push" or "delete".
   * @returns {string}
   * @example
   * request.changes().map((change) => `may not ${change.verb()} \`${change.tag}\``); // => ['may not create `1.3.1`', 'may not move `latest`']
   */
  verb() {
    return VERBS[this.kind];
  }
}

/**
 * One request to decide: what is asked (`operation`, or more simply `changes()` and
 * `push()`), and when (`time`). Where and who asks are one host call away: `repository()` and
 * `actor()`.
 * @example
 * request.time.toString(); // => '2026-12-24T17:00:00Z'
 * request.operation.tag; // => 'push'
 */
export class Request {
  /** @param {RawRequest} raw */
  constructor(raw) {
    /** What is asked, as the host passed it. */
    this.operation = raw.operation;
    /** When the request is made, as the host says. */
    this.time = new Instant(raw.time.seconds, raw.time.nanoseconds);
  }

  /**
   * Every tag the request touches, in request order.
   * @returns {Change[]}
   * @example
   * request.changes().map((change) => [change.tag, change.kind]); // => [['1.3.1', 'create'], ['latest', 'move']]
   */
  changes() {
    const { tag, val } = /** @type {any} */ (this.operation);
    switch (tag) {
      case 'push':
        return val.tags.map(({ tag, current }) => {
          const kind = current === undefined ? 'create' : current === val.digest ? 'identical' : 'move';
          return new Change(tag, kind, current, val.digest);
        });
      case 'delete-tags':
        return val.map(({ tag, current }) => new Change(tag, 'delete', current, undefined));
      case 'delete-manifest':
        return val.tags.map((tag) => new Change(tag, 'delete', val.digest, undefined));
      default:
        throw new Error(`unknown operation \`${tag}\``);
    }
  }

  /**
   * The pushed digest and its tags, if the request is a push.
   * @returns {Push | undefined}
   * @example
   * const push = request.push();
   * push.digest.slice(0, 11); // => 'sha256:7777'
   * push.tags.map((t) => [t.tag, t.current?.slice(0, 11)]); // => [['1.3.1', undefined], ['latest', 'sha256:3333']]
   */
  push() {
    return this.operation.tag === 'push' ? this.operation.val : undefined;
  }

  /**
   * The repository the request is for, e.g. `team/app`. A host call: ask once.
   * @returns {string}
   * @example
   * request.repository(); // => 'team/app'
   */
  repository() {
    return host().context.repositoryName();
  }

  /**
   * Who asks, as the host established it. A host call: ask once.
   * @returns {Actor}
   * @example
   * request.actor(); // => { id: 'release-bot', groups: ['maintainers'] }
   */
  actor() {
    return host().context.requestedBy();
  }
}
