"""Small helpers for the wording of findings, so that policies word things alike.

Example::

    >>> from tagpolicy_guest import text
    >>> digest = request.push().digest
    >>> f"{text.short_digest(digest)} is already tagged {text.code_list(['v1.3.0', 'latest'])}"
    'sha256:777777777777 is already tagged `v1.3.0`, `latest`'
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["code_list", "short_digest"]


def short_digest(digest: str) -> str:
    """``sha256:0123456789ab``: the first 19 bytes are enough for a person to tell images
    apart (the whole digest if it is shorter).

    Example::

        >>> from tagpolicy_guest.text import short_digest
        >>> short_digest(request.push().digest)
        'sha256:777777777777'
    """
    head = digest.encode("utf-8")[:19]
    try:
        return head.decode("utf-8") if len(head) == 19 else digest
    except UnicodeDecodeError:  # 19 bytes would cut a character: as Rust's `str::get`
        return digest


def code_list(items: Iterable[str], separator: str = ", ") -> str:
    """Each item in backticks, joined by ``separator``.

    Example::

        >>> from tagpolicy_guest.text import code_list
        >>> code_list(["latest", "stable"])
        '`latest`, `stable`'
        >>> code_list(["latest", "stable"], " or ")
        '`latest` or `stable`'
    """
    return separator.join(f"`{item}`" for item in items)
