"""The facts of the repository's images: manifests, config labels, referrers. Each call can
cost the host a registry request; call only what the rule needs. Only valid during
``evaluate``."""

from __future__ import annotations

from typing import Any

from . import _host

__all__ = ["annotation", "has_referrer", "label", "labels_of", "manifest_of", "referrers_of"]


def manifest_of(digest: str) -> Any | None:
    """The manifest ``digest`` (``.media_type``, ``.artifact_type``, ``.config``,
    ``.layers``, ``.manifests``, ``.subject``, ``.annotations``), or None if the host does
    not know it."""
    return _host.image.manifest_of(digest)


def labels_of(digest: str) -> list[Any]:
    """The labels (``.key``, ``.value``) of the image ``digest``'s config, ordered by key."""
    return _host.image.labels_of(digest)


def referrers_of(digest: str, artifact_type: str | None = None) -> list[Any]:
    """The artifacts whose subject is ``digest`` (``.digest``, ``.media_type``,
    ``.artifact_type``, ``.annotations``), ordered by digest; only those of
    ``artifact_type`` if given."""
    return _host.image.referrers_of(digest, artifact_type)


def label(digest: str, key: str) -> str | None:
    """The value of label ``key`` of the image ``digest``'s config."""
    return next((kv.value for kv in labels_of(digest) if kv.key == key), None)


def has_referrer(digest: str, artifact_type: str) -> bool:
    """Whether at least one artifact of ``artifact_type`` refers to ``digest``."""
    return bool(referrers_of(digest, artifact_type))


def annotation(manifest: Any, key: str) -> str | None:
    """The value of annotation ``key`` of a manifest (or descriptor)."""
    return next((kv.value for kv in manifest.annotations if kv.key == key), None)
