"""Tag grammar helpers shared by policies: releases (``1.2.3``, ``v1.2.3``) and the series
tags that follow them (``1.2``, ``1``, ``v1.2``).

Numbers are canonical (no leading zeros, as in SemVer), so ``1.02.3`` is neither a release
nor a series tag. The optional ``v`` is not part of the version: ``v1.2`` and ``1.2`` name
the same series.

:func:`newest_release` asks the host for the newest release of a series among the
repository's tags, at the same cost in a repository of any size.

Example::

    >>> from tagpolicy_guest import tags
    >>> tags.release("v1.3.1"), tags.series("1.2")
    (Version(major=1, minor=3, patch=1), Series(major=1, minor=2))
    >>> tags.newest_release(tags.series("1.2"))
    Version(major=1, minor=2, patch=10)
"""

from __future__ import annotations

from dataclasses import dataclass

from . import repository

__all__ = ["Series", "Version", "newest_release", "release", "release_pattern", "series"]

_U64_MAX = 2**64 - 1
#: Tags :func:`newest_release` reads at a time, newest first.
_NEWEST_PAGE = 8


@dataclass(frozen=True, order=True, slots=True)
class Version:
    """A release version ``major.minor.patch``, ordered numerically; ``str()`` gives
    ``1.2.3``.

    Example::

        >>> from tagpolicy_guest.tags import Version, release
        >>> release("1.2.10") > release("1.2.9")
        True
        >>> str(Version(1, 3, 0))
        '1.3.0'
    """

    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True, slots=True)
class Series:
    """A series: every release of a major version (``1``), or of a minor version (``1.2``);
    ``str()`` gives ``1`` or ``1.2``.

    Example::

        >>> from tagpolicy_guest.tags import Series
        >>> str(Series(1, 2)), str(Series(1))
        ('1.2', '1')
    """

    major: int
    minor: int | None = None

    def contains(self, version: Version) -> bool:
        """Whether ``version`` belongs to this series.

        Example::

            >>> from tagpolicy_guest import tags
            >>> tags.series("1.2").contains(tags.release("1.2.10"))
            True
            >>> tags.series("v1").contains(tags.release("2.0.0"))
            False
        """
        return version.major == self.major and (self.minor is None or self.minor == version.minor)

    def __str__(self) -> str:
        return f"{self.major}" if self.minor is None else f"{self.major}.{self.minor}"


def release(tag: str) -> Version | None:
    """The version of a release tag (``X.Y.Z`` or ``vX.Y.Z``); pre-releases such as
    ``1.2.3-rc1`` and builds such as ``1.2.3+b7`` are not releases.

    Example::

        >>> from tagpolicy_guest import tags
        >>> tags.release("v1.3.1")
        Version(major=1, minor=3, patch=1)
        >>> tags.release("1.3.1-rc1") is None, tags.release("1.03.1") is None
        (True, True)
    """
    numbers = _numbers(tag)
    return Version(*numbers) if numbers is not None and len(numbers) == 3 else None


def series(tag: str) -> Series | None:
    """The series a series tag names (``X``, ``X.Y``, ``vX``, ``vX.Y``), or None.

    Example::

        >>> from tagpolicy_guest import tags
        >>> tags.series("v1.2"), tags.series("1")
        (Series(major=1, minor=2), Series(major=1, minor=None))
        >>> tags.series("1.2.3") is None
        True
    """
    numbers = _numbers(tag)
    return Series(*numbers) if numbers is not None and len(numbers) in (1, 2) else None


def release_pattern(series: Series | None) -> str:
    """The pattern of the release tags of ``series`` (of every release for None), with or
    without a leading ``v``: ``v?1\\.2\\.(?:0|[1-9][0-9]*)`` for ``1.2``.

    Example::

        >>> from tagpolicy_guest import repository, tags
        >>> print(tags.release_pattern(tags.series("1.2")))
        v?1\\.2\\.(?:0|[1-9][0-9]*)
        >>> repository.newest(tags.release_pattern(None)).tag
        'v1.3.0'
    """
    number = "(?:0|[1-9][0-9]*)"
    if series is None:
        return rf"v?{number}\.{number}\.{number}"
    if series.minor is None:
        return rf"v?{series.major}\.{number}\.{number}"
    return rf"v?{series.major}\.{series.minor}\.{number}"


def newest_release(series: Series | None) -> Version | None:
    """The newest release of ``series`` (of the whole repository for None) among the
    repository's tags as they are before the request: a query of the host's index, read from
    the newest down.

    Example::

        >>> from tagpolicy_guest import tags
        >>> tags.newest_release(tags.series("1.2")), tags.newest_release(None)
        (Version(major=1, minor=2, patch=10), Version(major=1, minor=3, patch=0))
        >>> tags.newest_release(tags.series("2")) is None
        True
    """
    # The newest tag alone first (almost always a release); past tags whose numbers
    # overflow, pages of 8.
    pattern, after, limit = release_pattern(series), None, 1
    while True:
        query = repository.TagQuery(
            pattern=pattern, order=repository.TagOrder.NEWEST_FIRST, limit=limit, after=after
        )
        page = repository.find_tags(query)
        # A tag the pattern matches is a release unless a number overflows: skip it.
        for entry in page:
            version = release(entry.tag)
            if version is not None:
                return version
        if len(page) < limit:
            return None
        after, limit = page[-1].tag, _NEWEST_PAGE


def _numbers(tag: str) -> list[int] | None:
    """The dot-separated canonical numbers of ``tag`` after an optional ``v``."""
    body = tag[1:] if tag.startswith("v") else tag
    numbers = []
    for part in body.split("."):
        canonical = part != "" and all("0" <= c <= "9" for c in part) and (part == "0" or not part.startswith("0"))
        if not canonical or int(part) > _U64_MAX:
            return None
        numbers.append(int(part))
    return numbers
