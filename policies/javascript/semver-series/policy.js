// `semver-series`: series tags (`1.2`, `1`) and `latest` follow the newest release.
//
// A push that sets series tag `X.Y` or `X` (optional leading `v`) is allowed only if, after
// the push, the image it points at carries the highest release `X.Y.Z` of that series among
// all tags of the repository (this push included); `latest` likewise must carry the highest
// release overall, unless `latest: false`. A series without a release cannot be tagged.
// Other tags, identical re-pushes and deletions are not governed.
// The JavaScript port of policies/semver-series: same settings, same decisions.

import { Series, definePolicy, release, repository, series, settings as s } from 'tagpolicy-guest';
import pkg from './package.json' with { type: 'json' };

/** The newer of two versions (`a` may be undefined). */
const newer = (a, b) => (a === undefined || b.compare(a) > 0 ? b : a);

export const policy = definePolicy({
  name: pkg.name,
  version: pkg.version,
  description: 'Series tags (1.2, 1) and latest must point at the newest release of their series',
  settingsExample: '{"latest":true}',

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

    // The repository's tags as they will be after the push.
    const after = new Map(repository.listTags().map((entry) => [entry.tag, entry.digest]));
    for (const change of push.tags) after.set(change.tag, push.digest);
    // One pass: the newest release of every series and overall, and the releases the pushed
    // image carries.
    const newest = new Map();
    let newestOverall;
    const onImage = [];
    for (const [tag, digest] of after) {
      const version = release(tag);
      if (version === undefined) continue;
      for (const key of [new Series(version.major), new Series(version.major, version.minor)]) {
        newest.set(`${key}`, newer(newest.get(`${key}`), version));
      }
      newestOverall = newer(newestOverall, version);
      if (digest === push.digest) onImage.push(version);
    }

    for (const { tag, follows } of governed) {
      const name = follows === undefined ? 'the repository' : `series ${follows}`;
      const best = follows === undefined ? newestOverall : newest.get(`${follows}`);
      if (best === undefined) {
        findings.deny(
          tag,
          `tag \`${tag}\` follows ${name} which has no release yet: push a release tag first or in the same push`,
        );
        continue;
      }
      if (!onImage.some((version) => version.equals(best))) {
        const here = onImage
          .filter((version) => follows === undefined || follows.contains(version))
          .reduce(newer, undefined);
        findings.deny(
          tag,
          `tag \`${tag}\` must point at the newest release of ${name} (${best}), but this image carries ${here === undefined ? 'no release of it' : `only ${here}`}`,
        );
      }
    }
  },
});
