"""`image-requirements`: chosen tags only on images that meet requirements: artifacts of given
types attached (a signature, an SBOM), annotations and config labels present or matching a
pattern, the version annotation equal to the tag.

Each rule guards the tags matching its `tags`; a push that creates or moves such a tag is
denied, with every requirement the image misses, unless the image meets all of them.
Identical re-pushes and deletions are not governed. A tag guarded by several rules must meet
each of them.

The Python port of policies/image-requirements: the same decisions, word for word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import tagpolicy_guest
from tagpolicy_guest import Change, ChangeKind, Findings, Pattern, Patterns, Request, SettingsError, image
from tagpolicy_guest.text import short_digest

#: The annotation whose value must equal the tag under `version_matches_tag`.
VERSION = "org.opencontainers.image.version"


@dataclass
class Rule:
    #: The tags this rule guards.
    tags: Patterns
    #: Artifact types that must each refer to the image at least once.
    referrers: list[str] = field(default_factory=list)
    #: Annotations of the manifest that must be present, matching the pattern whole.
    annotations: dict[str, Pattern] = field(default_factory=dict)
    #: Labels of the image config that must be present, matching the pattern whole.
    labels: dict[str, Pattern] = field(default_factory=dict)
    #: `org.opencontainers.image.version` must equal the tag (a leading `v` ignored on both).
    version_matches_tag: bool = False


@dataclass
class Settings:
    rules: list[Rule]


_UNREAD: Any = object()


class Image:
    """The facts of the pushed image, each read on first use."""

    def __init__(self, digest: str) -> None:
        self.digest = digest
        self._manifest: Any = _UNREAD
        self._labels: dict[str, str] | None = None
        self._referrers: list[str] | None = None

    def manifest(self) -> Any | None:
        if self._manifest is _UNREAD:
            self._manifest = image.manifest_of(self.digest)
        return self._manifest

    def has_referrer(self, artifact_type: str) -> bool:
        if self._referrers is None:
            self._referrers = [r.artifact_type for r in image.referrers_of(self.digest)]
        return artifact_type in self._referrers

    def label(self, key: str) -> str | None:
        if self._labels is None:
            self._labels = {kv.key: kv.value for kv in image.labels_of(self.digest)}
        return self._labels.get(key)


def unprefixed(text: str) -> str:
    return text[1:] if text.startswith("v") else text


def missing(rule: Rule, change: Change, facts: Image) -> list[str]:
    """What the image lacks for `rule` and the tag of `change`, one line each."""
    manifest = facts.manifest()
    if manifest is None:
        return ["the host knows nothing of the image"]
    lines = []
    for artifact_type in rule.referrers:
        if not facts.has_referrer(artifact_type):
            lines.append(f"no artifact of type `{artifact_type}` refers to it")
    for key, pattern in rule.annotations.items():
        value = image.annotation(manifest, key)
        if value is None:
            lines.append(f"it has no annotation `{key}`")
        elif not pattern.matches(value):
            lines.append(f"its annotation `{key}` is `{value}`, which does not match `{pattern}`")
    for key, pattern in rule.labels.items():
        value = facts.label(key)
        if value is None:
            lines.append(f"its config has no label `{key}`")
        elif not pattern.matches(value):
            lines.append(f"its config label `{key}` is `{value}`, which does not match `{pattern}`")
    if rule.version_matches_tag:
        version = image.annotation(manifest, VERSION)
        if version is None:
            lines.append(f"it has no annotation `{VERSION}`")
        elif unprefixed(version) != unprefixed(change.tag):
            lines.append(f"its annotation `{VERSION}` is `{version}`, not the tag")
    return lines


class ImageRequirements(tagpolicy_guest.Policy):
    # A copy of ../../image-requirements/metadata.json, checked by the tests: componentize-py reads nothing
    # outside this folder.
    NAME = "image-requirements"
    VERSION = "0.1.0"
    DESCRIPTION = "Chosen tags only on images with the required signatures, SBOMs, annotations and labels"
    SETTINGS_EXAMPLE = r'{"rules":[{"tags":["v?\\d+\\.\\d+\\.\\d+"],"referrers":["application/vnd.dev.cosign.artifact.sig.v1+json","application/spdx+json"],"annotations":{"org.opencontainers.image.source":"https://github\\.com/team/.*"},"labels":{},"version_matches_tag":true}]}'
    SETTINGS = Settings
    settings: Settings

    @classmethod
    def configure(cls, settings: Settings) -> ImageRequirements:
        if not settings.rules:
            raise SettingsError("settings.rules: empty; give at least one rule")
        for index, rule in enumerate(settings.rules):
            if not rule.tags:
                raise SettingsError(f"settings.rules[{index}].tags: empty; list the tag patterns this rule guards")
            if not (rule.referrers or rule.annotations or rule.labels or rule.version_matches_tag):
                raise SettingsError(
                    f"settings.rules[{index}]: requires nothing; give `referrers`, `annotations`, `labels` or `version_matches_tag`"
                )
            if "" in rule.referrers:
                raise SettingsError(
                    f"settings.rules[{index}].referrers[{rule.referrers.index('')}]: empty artifact type"
                )
        return cls(settings)

    def evaluate(self, request: Request, findings: Findings) -> None:
        push = request.push()
        if push is None:
            return
        facts = Image(push.digest)
        for change in request.changes():
            if change.kind not in (ChangeKind.CREATE, ChangeKind.MOVE):
                continue
            lines: list[str] = []
            for rule in self.settings.rules:
                if not rule.tags.any_match(change.tag):
                    continue
                for line in missing(rule, change, facts):
                    if line not in lines:
                        lines.append(line)
            if lines:
                findings.deny(
                    change.tag,
                    f"tag `{change.tag}` may only point at an image that meets its requirements, "
                    f"and {short_digest(push.digest)} does not: {'; '.join(lines)}",
                )


Policy = tagpolicy_guest.export(ImageRequirements)
