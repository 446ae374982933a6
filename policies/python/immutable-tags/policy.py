"""`immutable-tags`: release tags never move, chosen tags stay mutable, owners guard tags.

A tag is immutable if it matches `immutable`, else mutable if it matches `mutable`, else
`default`. Creating a tag is allowed; moving or deleting an immutable one is denied; an
identical re-push is always allowed. `owners` restrict every change of a matching tag
(create, move, delete) to the listed actors, whatever the tag's mutability; when several
owner entries match a tag, the actor must be listed in each of them.

With `grace: {period: 15m, same_actor: true}`, an immutable tag may still be moved within
the period after it was created, by the actor who created it (when `same_actor`, the
default), so that a broken release pushed by CI can be fixed by CI minutes later. Only a
creation the host recorded counts: a tag whose creation is not on record gets no grace.

Signature tags are the tags signing tools derive from an image's digest on registries without
the referrers API: cosign's `sha256-<hex>.sig`, `.att` and `.sbom`, and the referrers tag
schema's `sha256-<hex>`. Each new signature or attestation moves them, so they follow
`signature_tags`, not the patterns: `append-only` (the default) lets such a tag move only to a
manifest that keeps every layer and every listed manifest of the current one and, if it names
a subject, names the tag's image; it may be deleted only while its image carries no immutable
tag. `immutable` and `mutable` treat them like any other tag.

The Python port of policies/immutable-tags: the same decisions, word for word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import tagpolicy_guest
from tagpolicy_guest import (
    Change,
    ChangeKind,
    Findings,
    Pattern,
    Patterns,
    Period,
    Request,
    SettingsError,
    image,
    repository,
)
from tagpolicy_guest.text import code_list, short_digest


@dataclass
class Owner:
    pattern: Pattern
    actors: list[str]


@dataclass
class Grace:
    period: Period
    same_actor: bool = True


@dataclass
class Settings:
    default: Literal["immutable", "mutable"] = "immutable"
    mutable: Patterns = field(default_factory=Patterns)
    immutable: Patterns = field(default_factory=Patterns)
    owners: list[Owner] = field(default_factory=list)
    grace: Grace | None = None
    signature_tags: Literal["append-only", "immutable", "mutable"] = "append-only"


class ImmutableTags(tagpolicy_guest.Policy):
    # A copy of ../../immutable-tags/metadata.json, checked by the tests: componentize-py reads nothing
    # outside this folder.
    NAME = "immutable-tags"
    VERSION = "0.1.0"
    DESCRIPTION = "Immutable tags with mutable exceptions and owners: release tags never move or disappear"
    SETTINGS_EXAMPLE = r'{"default":"immutable","mutable":["latest","\\d+\\.\\d+"],"immutable":["v?\\d+\\.\\d+\\.\\d+"],"owners":[{"pattern":"ci-.*","actors":["ci-bot"]}],"grace":{"period":"15m","same_actor":true}}'
    SETTINGS = Settings
    settings: Settings

    @classmethod
    def configure(cls, settings: Settings) -> ImmutableTags:
        for index, owner in enumerate(settings.owners):
            if not owner.actors:
                raise SettingsError(
                    f"settings.owners[{index}].actors: empty; list at least one actor who may change tags matching `{owner.pattern}`"
                )
        return cls(settings)

    def immutable_because(self, tag: str) -> str | None:
        """Why `tag` is immutable, or None if it is mutable."""
        if signed_image(tag) is not None:
            if self.settings.signature_tags == "immutable":
                return "a signature tag, and `signature_tags` is `immutable`"
            return None
        pattern = self.settings.immutable.first_match(tag)
        if pattern is not None:
            return f"matches immutable pattern `{pattern}`"
        if self.settings.mutable.any_match(tag):
            return None
        if self.settings.default == "immutable":
            return "matches no pattern and the default is immutable"
        return None

    def grace(self, request: Request, tag: str) -> str | None:
        """None if the move of immutable `tag` falls within its grace period; else why not, as
        a clause of the denial (empty without a grace period)."""
        grace = self.settings.grace
        if grace is None:
            return ""
        period = grace.period
        history = repository.history_of(tag)
        created = None if history is None else history.created
        if created is None:
            return "; it has no grace period: its creation is not on record"
        if not period.contains(created.at, request.time):
            return f"; its {period} grace period after creation has passed"
        if grace.same_actor:
            actor = request.actor().id
            if created.actor is None:
                return f"; it was created anonymously, so nobody may move it in its {period} grace period"
            if actor != created.actor:
                return f"; only `{created.actor}`, who created it, may move it in its {period} grace period"
        return None

    def check_append_only(self, change: Change, signed: str, findings: Findings) -> None:
        """The `append-only` rule for the signature tag `change.tag` of image `signed`."""
        tag = change.tag
        rule = f"signature tag `{tag}` is append-only (`signature_tags: append-only`)"
        if change.to is None:
            # A deletion strips every signature at once: allowed only while nothing holds the
            # image in place.
            protected = next(
                (t for t in repository.tags_of(signed) if self.immutable_because(t) is not None), None
            )
            if protected is not None:
                findings.deny(
                    tag,
                    f"{rule}: it belongs to image {short_digest(signed)}, which carries immutable tag "
                    f"`{protected}`, so it cannot be deleted",
                )
            return
        new = image.manifest_of(change.to)
        if new is None:
            findings.deny(
                tag, f"{rule}: the manifest {short_digest(change.to)} cannot be read, so the change cannot be checked"
            )
            return
        if new.subject is not None and new.subject.digest != signed:
            findings.deny(
                tag,
                f"signature tag `{tag}` belongs to image {short_digest(signed)}, but the manifest "
                f"{short_digest(change.to)} names another subject, {short_digest(new.subject.digest)}",
            )
        if change.from_ is None:
            return
        old = image.manifest_of(change.from_)
        if old is None:
            findings.deny(
                tag,
                f"{rule}: its current manifest {short_digest(change.from_)} cannot be read, so what the move "
                "would drop cannot be checked",
            )
            return
        kept = {entry_key(entry) for entry in [*new.layers, *new.manifests]}
        listed = [*old.layers, *old.manifests]
        lost = [entry for entry in listed if entry_key(entry) not in kept]
        if lost:
            findings.deny(
                tag,
                f"{rule}: moving it from {short_digest(change.from_)} to {short_digest(change.to)} would drop "
                f"{len(lost)} of the {len(listed)} entries it lists: {describe(lost)}",
            )

    def check_owners(self, request: Request, change: Change, findings: Findings) -> None:
        owners = [owner for owner in self.settings.owners if owner.pattern.matches(change.tag)]
        if not owners:
            return
        # Only now ask the host who asks.
        actor = request.actor().id
        for owner in owners:
            if actor is not None and actor in owner.actors:
                continue
            who = "an anonymous actor" if actor is None else f"`{actor}`"
            findings.deny(
                change.tag,
                f"tag `{change.tag}` is owned by {code_list(owner.actors)} (owners pattern `{owner.pattern}`): "
                f"{who} may not {change.verb} it",
            )

    def evaluate(self, request: Request, findings: Findings) -> None:
        for change in request.changes():
            # An identical re-push and the deletion of a tag that does not exist change nothing.
            if change.is_identical or (change.from_ is None and change.kind is ChangeKind.DELETE):
                continue
            self.check_owners(request, change, findings)
            signed = signed_image(change.tag)
            if signed is not None and self.settings.signature_tags == "append-only":
                self.check_append_only(change, signed, findings)
                continue
            if change.kind is ChangeKind.CREATE:
                continue
            because = self.immutable_because(change.tag)
            if because is not None:
                origin = short_digest(change.from_ or "")
                if change.to is not None:
                    grace = self.grace(request, change.tag)
                    if grace is None:
                        continue
                    what = f"cannot move from {origin} to {short_digest(change.to)}"
                else:
                    what, grace = f"points at {origin} and cannot be deleted", ""
                findings.deny(change.tag, f"tag `{change.tag}` is immutable ({because}): it {what}{grace}")


_HEX = frozenset("0123456789abcdef")


def signed_image(tag: str) -> str | None:
    """The image a signature tag belongs to: `sha256-<hex>` (the referrers tag schema) and
    cosign's `sha256-<hex>.sig`, `.att` and `.sbom` name the image `sha256:<hex>`."""
    if not tag.startswith("sha256-"):
        return None
    hex_, suffix = tag[7:71], tag[71:]
    if len(hex_) == 64 and set(hex_) <= _HEX and suffix in ("", ".sig", ".att", ".sbom"):
        return f"sha256:{hex_}"
    return None


def entry_key(entry: Any) -> tuple:
    """Everything a descriptor says, so that a signature kept under another annotation counts
    as lost."""
    platform = entry.platform
    return (
        entry.media_type,
        entry.digest,
        entry.size,
        entry.artifact_type,
        tuple((kv.key, kv.value) for kv in entry.annotations),
        None if platform is None else (platform.os, platform.architecture, platform.variant),
    )


def describe(lost: list[Any]) -> str:
    """At most three entries a move would drop, for a person to find them."""
    text = []
    for entry in lost[:3]:
        keys = ", ".join(kv.key for kv in entry.annotations)
        annotated = f", annotated {keys}" if keys else ""
        text.append(f"{short_digest(entry.digest)} ({entry.media_type}{annotated})")
    if len(lost) > 3:
        text.append(f"and {len(lost) - 3} more")
    return "; ".join(text)


Policy = tagpolicy_guest.export(ImmutableTags)
