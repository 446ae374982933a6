// `semver-series`: series tags (`1.2`, `1`) and `latest` follow the newest release.
//
// A push that sets series tag `X.Y` or `X` (optional leading `v`) is allowed only if, after
// the push, the image it points at carries the highest release `X.Y.Z` of that series among
// all tags of the repository (this push included); `latest` likewise must carry the highest
// release overall, unless `latest: false`. A series without a release cannot be tagged.
// Other tags, identical re-pushes and deletions are not governed.
//
// The newest release of a series is a query of the host's index (the newest tag of the
// series' pattern), so a decision costs the same in a repository of any size.
// The JavaScript port of policies/semver-series: same settings, same decisions.

import { definePolicy, newestRelease, release, repository, series, settings as s } from 'tagpolicy-guest';
// Name, version, description and settings example: the file the Rust original reads too.
import metadata from '../../semver-series/metadata.json' with { type: 'json' };

/** The newer of two versions (either may be undefined: the other, as Rust's `Option::max`). */
const newer = (a, b) => (b === undefined ? a : a === undefined || b.compare(a) > 0 ? b : a);

export const policy = definePolicy({
  name: metadata.name,
  version: metadata.version,
  description: metadata.description,
  settingsExample: metadata.settings_example,

  settings: s.object('Settings', { latest: s.withDefault(s.boolean(), true) }),

  evaluate(request, findings, settings) {
    const push = request.push();
    if (push === undefined) return;
    // What each governed tag follows: a series, or (`undefined`) the whole repository.
    const governed = [];
    for (const change of request.changes()) {
      if (change.isIdentical()) continue;
      const follows = series(change.tag);
      if (follows !== undefined) governed.push({ tag: change.tag, follows });
      else if (settings.latest && change.tag === 'latest') governed.push({ tag: change.tag, follows: undefined });
    }
    if (governed.length === 0) return;

    // The releases the image carries after the push: its tags now, and the pushed ones.
    const pushed = push.tags.map((change) => release(change.tag)).filter((version) => version !== undefined);
    const onImage = repository
      .tagsOf(push.digest)
      .map((tag) => release(tag))
      .filter((version) => version !== undefined)
      .concat(pushed);

    for (const { tag, follows } of governed) {
      const name = follows === undefined ? 'the repository' : `series ${follows}`;
      const includes = (version) => follows === undefined || follows.contains(version);
      // The newest release after the push: in the repository, or pushed now.
      const inPush = pushed.filter(includes).reduce(newer, undefined);
      const best = newer(newestRelease(follows), inPush);
      if (best === undefined) {
        findings.deny(
          tag,
          `tag \`${tag}\` follows ${name} which has no release yet: push a release tag first or in the same push`,
        );
        continue;
      }
      if (!onImage.some((version) => version.equals(best))) {
        const here = onImage.filter(includes).reduce(newer, undefined);
        findings.deny(
          tag,
          `tag \`${tag}\` must point at the newest release of ${name} (${best}), but this image carries ${here === undefined ? 'no release of it' : `only ${here}`}`,
        );
      }
    }
  },
});
