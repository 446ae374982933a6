"""A fake host for running the SDK outside a component, with plain CPython.

The SDK reaches the generated bindings only through ``tagpolicy_guest._host``; importing
this module installs a fake in its place (so import it before ``tagpolicy_guest``). The
fake's state is :data:`HOST`: the repository, image facts, actor and the verdicts reported.

Its regular expressions use Python's ``re`` as a stand-in for the host's engine: good enough
to test the SDK's plumbing, not the dialect (the SDK itself never uses ``re``).
"""

from __future__ import annotations

import dataclasses
import enum
import re
import sys
import types as pytypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Optional, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

E = TypeVar("E")


@dataclass(frozen=True)
class Err(Generic[E], Exception):
    """As ``componentize_py_types.Err``: a WIT ``result`` error raised as an exception."""

    value: E


# The records and variants of `interface types`, as componentize-py generates them.
@dataclass
class Actor:
    id: Optional[str]
    groups: list[str]


@dataclass
class TagChange:
    tag: str
    current: Optional[str]


@dataclass
class Push:
    digest: str
    tags: list[TagChange]


@dataclass
class ManifestDeletion:
    digest: str
    tags: list[str]


@dataclass
class Operation_Push:
    value: Push


@dataclass
class Operation_DeleteTags:
    value: list[TagChange]


@dataclass
class Operation_DeleteManifest:
    value: ManifestDeletion


@dataclass
class Instant:
    seconds: int
    nanoseconds: int


@dataclass
class Request:
    operation: Any
    time: Instant


@dataclass
class TagEntry:
    tag: str
    digest: str


class TagOrder(enum.Enum):
    NAME = 0
    NEWEST_FIRST = 1


@dataclass
class TagQuery:
    pattern: str
    order: TagOrder
    limit: int
    after: Optional[str]


@dataclass
class Stamp:
    at: Instant
    actor: Optional[str]


@dataclass
class TagHistory:
    changed: Stamp
    created: Optional[Stamp]


@dataclass
class KeyValue:
    key: str
    value: str


@dataclass
class Manifest:
    media_type: str
    artifact_type: Optional[str] = None
    config: Any = None
    layers: list[Any] = field(default_factory=list)
    manifests: list[Any] = field(default_factory=list)
    subject: Any = None
    annotations: list[KeyValue] = field(default_factory=list)


@dataclass
class Referrer:
    digest: str
    media_type: str
    artifact_type: str
    annotations: list[KeyValue] = field(default_factory=list)


@dataclass
class PolicyMetadata:
    name: str
    version: str
    description: str
    settings_example: str


class FakeHost:
    """What the host knows during one evaluation, and what the policy told it."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.repository_name = "team/app"
        self.actor = Actor(None, [])
        #: tag -> digest
        self.tags: dict[str, str] = {}
        #: tag -> what the hosts recorded of it (answered only for tags in `tags`)
        self.histories: dict[str, TagHistory] = {}
        self.manifests: dict[str, Manifest] = {}
        self.labels: dict[str, dict[str, str]] = {}
        self.referrers: dict[str, list[Referrer]] = {}
        #: ("deny" | "warn", tag, reason) in the order reported
        self.verdicts: list[tuple[str, Optional[str], str]] = []
        self.printed: list[str] = []
        #: every host call, as (function, arguments)
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.sets: list[list[str]] = []

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    # patterns
    def full_match(self, pattern: str, text: str) -> bool:
        self._call("full_match", pattern, text)
        return re.fullmatch(self._compile(pattern), text) is not None

    def find(self, pattern: str, text: str) -> bool:
        self._call("find", pattern, text)
        return re.search(self._compile(pattern), text) is not None

    def prepare_set(self, patterns: list[str]) -> int:
        self._call("prepare_set", patterns)
        for pattern in patterns:
            self._compile(pattern)
        if patterns not in self.sets:
            self.sets.append(list(patterns))
        return self.sets.index(patterns)

    def first_in_set(self, handle: int, text: str) -> Optional[int]:
        self._call("first_in_set", handle, text)
        if handle >= len(self.sets):
            raise Err(f"no pattern set {handle}")
        return next((i for i, p in enumerate(self.sets[handle]) if re.fullmatch(p, text)), None)

    @staticmethod
    def _compile(pattern: str) -> re.Pattern[str]:
        try:
            return re.compile(pattern)
        except re.error as err:
            raise Err(str(err)) from None

    # verdict
    def deny(self, tag: Optional[str], reason: str) -> None:
        self.verdicts.append(("deny", tag, reason))

    def warn(self, tag: Optional[str], reason: str) -> None:
        self.verdicts.append(("warn", tag, reason))

    def fail(self, reason: str) -> None:
        self.verdicts.append(("fail", None, reason))

    def write(self, text: str) -> None:
        self.printed.append(text)

    # context
    def requested_by(self) -> Actor:
        self._call("requested_by")
        return self.actor

    def get_repository_name(self) -> str:
        self._call("repository_name")
        return self.repository_name

    # repository
    def find_tags(self, query: TagQuery) -> list[TagEntry]:
        """As the host: the tags whose whole name matches, in the query's order, at most
        `limit` (and 1000) of them, after the cursor."""
        self._call("find_tags", dataclasses.replace(query))
        if query.limit == 0:
            raise Err("limit: 0; ask for at least one tag")
        pattern = self._compile(query.pattern)
        found = [tag for tag in self.tags if re.fullmatch(pattern, tag)]
        if query.order is TagOrder.NAME:
            found.sort(key=str.encode)
            if query.after is not None:
                found = [tag for tag in found if tag.encode() > query.after.encode()]
        elif query.order is TagOrder.NEWEST_FIRST:
            found.sort(key=newest_first_key, reverse=True)
            if query.after is not None:
                after = newest_first_key(query.after)
                found = [tag for tag in found if newest_first_key(tag) < after]
        else:
            raise TypeError(f"not a TagOrder: {query.order!r}")
        return [TagEntry(tag, self.tags[tag]) for tag in found[: min(query.limit, 1000)]]

    def count_tags(self) -> int:
        self._call("count_tags")
        return len(self.tags)

    def digest_of(self, tag: str) -> Optional[str]:
        self._call("digest_of", tag)
        return self.tags.get(tag)

    def tags_of(self, digest: str) -> list[str]:
        self._call("tags_of", digest)
        return sorted((t for t, d in self.tags.items() if d == digest), key=str.encode)

    def history_of(self, tag: str) -> Optional[TagHistory]:
        self._call("history_of", tag)
        return self.histories.get(tag) if tag in self.tags else None

    # image
    def manifest_of(self, digest: str) -> Optional[Manifest]:
        self._call("manifest_of", digest)
        return self.manifests.get(digest)

    def labels_of(self, digest: str) -> list[KeyValue]:
        self._call("labels_of", digest)
        return [KeyValue(k, v) for k, v in sorted(self.labels.get(digest, {}).items())]

    def referrers_of(self, digest: str, artifact_type: Optional[str]) -> list[Referrer]:
        self._call("referrers_of", digest, artifact_type)
        found = self.referrers.get(digest, [])
        return [r for r in found if artifact_type is None or r.artifact_type == artifact_type]


def newest_first_key(tag: str) -> tuple[tuple[int, ...], bytes]:
    """How the host orders tags newest first (descending): by the runs of ASCII digits in
    the tag, compared one after the other as numbers (fewer numbers sort lower when the rest
    are equal), then by the name's bytes."""
    return tuple(int(run) for run in re.findall("[0-9]+", tag)), tag.encode()


HOST = FakeHost()


class Export:
    """As ``wit_world.exports.Policy``: the protocol the exported class implements."""


def _module() -> pytypes.ModuleType:
    module = pytypes.ModuleType("tagpolicy_guest._host")
    module.Err = Err  # type: ignore[attr-defined]
    module.Export = Export  # type: ignore[attr-defined]
    module.types = pytypes.SimpleNamespace(  # type: ignore[attr-defined]
        **{
            c.__name__: c
            for c in (Actor, TagChange, Push, ManifestDeletion, Operation_Push, Operation_DeleteTags,
                      Operation_DeleteManifest, Instant, Request, TagEntry, TagOrder, TagQuery, Stamp,
                      TagHistory, KeyValue, Manifest, Referrer, PolicyMetadata)
        }
    )
    module.patterns = pytypes.SimpleNamespace(  # type: ignore[attr-defined]
        full_match=HOST.full_match, find=HOST.find, prepare_set=HOST.prepare_set, first_in_set=HOST.first_in_set
    )
    module.verdict = pytypes.SimpleNamespace(deny=HOST.deny, warn=HOST.warn, fail=HOST.fail)  # type: ignore[attr-defined]
    module.output = pytypes.SimpleNamespace(write=HOST.write)  # type: ignore[attr-defined]
    module.context = pytypes.SimpleNamespace(  # type: ignore[attr-defined]
        repository_name=HOST.get_repository_name, requested_by=HOST.requested_by
    )
    module.repository = pytypes.SimpleNamespace(  # type: ignore[attr-defined]
        find_tags=HOST.find_tags,
        count_tags=HOST.count_tags,
        digest_of=HOST.digest_of,
        tags_of=HOST.tags_of,
        history_of=HOST.history_of,
    )
    module.image = pytypes.SimpleNamespace(  # type: ignore[attr-defined]
        manifest_of=HOST.manifest_of, labels_of=HOST.labels_of, referrers_of=HOST.referrers_of
    )
    return module


if "tagpolicy_guest" in sys.modules and "tagpolicy_guest._host" not in sys.modules:
    raise RuntimeError("import fakehost before tagpolicy_guest")
sys.modules.setdefault("tagpolicy_guest._host", _module())


def stamp(at: int, actor: Optional[str], nanoseconds: int = 0) -> Stamp:
    """A record of a change at ``at`` (seconds) by ``actor`` (None: anonymous)."""
    return Stamp(Instant(at, nanoseconds), actor)


def push(digest: str, *tags: str, at: int = 0) -> Request:
    """A push request of ``tags`` to ``digest``, each with its current digest from HOST."""
    return Request(Operation_Push(Push(digest, [TagChange(t, HOST.tags.get(t)) for t in tags])), Instant(at, 0))


def delete(*tags: str, at: int = 0) -> Request:
    """A deletion of ``tags``."""
    return Request(Operation_DeleteTags([TagChange(t, HOST.tags.get(t)) for t in tags]), Instant(at, 0))


def delete_manifest(digest: str, at: int = 0) -> Request:
    """A deletion of the manifest ``digest`` and its tags."""
    return Request(
        Operation_DeleteManifest(ManifestDeletion(digest, sorted(t for t, d in HOST.tags.items() if d == digest))),
        Instant(at, 0),
    )
