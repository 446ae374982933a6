"""Small helpers for the wording of findings, so that policies word things alike."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["code_list", "short_digest"]


def short_digest(digest: str) -> str:
    """``sha256:0123456789ab``: the first 19 bytes are enough for a person to tell images
    apart (the whole digest if it is shorter)."""
    head = digest.encode("utf-8")[:19]
    try:
        return head.decode("utf-8") if len(head) == 19 else digest
    except UnicodeDecodeError:  # 19 bytes would cut a character: as Rust's `str::get`
        return digest


def code_list(items: Iterable[str], separator: str = ", ") -> str:
    """Each item in backticks, joined: ```a`, `b```."""
    return separator.join(f"`{item}`" for item in items)
