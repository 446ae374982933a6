"""A read-only view of the repository named in the request, as it is before the request.
Only valid during ``evaluate``."""

from __future__ import annotations

from typing import Any

from . import _host

__all__ = ["digest_of", "list_tags", "tags_of"]


def list_tags() -> list[Any]:
    """Every tag of the repository (``.tag``, ``.digest``), ordered by tag name."""
    return _host.repository.list_tags()


def digest_of(tag: str) -> str | None:
    """The digest ``tag`` points at, or None if the tag does not exist."""
    return _host.repository.digest_of(tag)


def tags_of(digest: str) -> list[str]:
    """The tags that point at ``digest``, ordered by tag name (empty if none)."""
    return _host.repository.tags_of(digest)
