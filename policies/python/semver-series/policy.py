"""`semver-series`: series tags (`1.2`, `1`) and `latest` follow the newest release.

A push that sets series tag `X.Y` or `X` (optional leading `v`) is allowed only if, after
the push, the image it points at carries the highest release `X.Y.Z` of that series among
all tags of the repository (this push included); `latest` likewise must carry the highest
release overall, unless `latest: false`. A series without a release cannot be tagged. Other
tags, identical re-pushes and deletions are not governed.

The newest release of a series is a query of the host's index (the newest tag of the
series' pattern), so a decision costs the same in a repository of any size.

The Python port of policies/semver-series: the same decisions, word for word.
"""

from __future__ import annotations

from dataclasses import dataclass

import tagpolicy_guest
from tagpolicy_guest import Findings, Request, repository, tags
from tagpolicy_guest.tags import Series, Version


@dataclass
class Settings:
    latest: bool = True


#: What a governed tag follows: a series, or (None) the whole repository (`latest`).
Follows = Series | None


def includes(follows: Follows, version: Version) -> bool:
    return follows is None or follows.contains(version)


def name(follows: Follows) -> str:
    return "the repository" if follows is None else f"series {follows}"


class SemverSeries(tagpolicy_guest.Policy):
    # A copy of ../../semver-series/metadata.json, checked by the tests: componentize-py reads nothing
    # outside this folder.
    NAME = "semver-series"
    VERSION = "0.1.0"
    DESCRIPTION = "Series tags (1.2, 1) and latest must point at the newest release of their series"
    SETTINGS_EXAMPLE = '{"latest":true}'
    SETTINGS = Settings
    settings: Settings

    def evaluate(self, request: Request, findings: Findings) -> None:
        push = request.push()
        if push is None:
            return
        governed: list[tuple[str, Follows]] = []
        for change in request.changes():
            if change.is_identical:
                continue
            series = tags.series(change.tag)
            if series is not None:
                governed.append((change.tag, series))
            elif self.settings.latest and change.tag == "latest":
                governed.append((change.tag, None))
        if not governed:
            return

        # The releases the image carries after the push: its tags now, and the pushed ones.
        pushed = [version for version in (tags.release(change.tag) for change in push.tags) if version is not None]
        on_image = [version for version in map(tags.release, repository.tags_of(push.digest)) if version is not None]
        on_image += pushed

        for tag, follows in governed:
            # The newest release after the push: in the repository, or pushed now.
            candidates = [version for version in pushed if includes(follows, version)]
            in_repository = tags.newest_release(follows)
            if in_repository is not None:
                candidates.append(in_repository)
            if not candidates:
                findings.deny(
                    tag,
                    f"tag `{tag}` follows {name(follows)} which has no release yet: push a release tag first or in the same push",
                )
                continue
            newest = max(candidates)
            if newest not in on_image:
                carried = [version for version in on_image if includes(follows, version)]
                here = f"only {max(carried)}" if carried else "no release of it"
                findings.deny(
                    tag,
                    f"tag `{tag}` must point at the newest release of {name(follows)} ({newest}), but this image carries {here}",
                )


Policy = tagpolicy_guest.export(SemverSeries)
