"""Tag grammar helpers shared by policies: releases (``1.2.3``, ``v1.2.3``) and the series
tags that follow them (``1.2``, ``1``, ``v1.2``).

Numbers are canonical (no leading zeros, as in SemVer), so ``1.02.3`` is neither a release
nor a series tag. The optional ``v`` is not part of the version: ``v1.2`` and ``1.2`` name
the same series.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Series", "Version", "release", "series"]

_U64_MAX = 2**64 - 1


@dataclass(frozen=True, order=True, slots=True)
class Version:
    """A release version ``major.minor.patch``, ordered numerically."""

    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True, slots=True)
class Series:
    """A series: every release of a major version (``1``), or of a minor version (``1.2``)."""

    major: int
    minor: int | None = None

    def contains(self, version: Version) -> bool:
        """Whether ``version`` belongs to this series."""
        return version.major == self.major and (self.minor is None or self.minor == version.minor)

    def __str__(self) -> str:
        return f"{self.major}" if self.minor is None else f"{self.major}.{self.minor}"


def release(tag: str) -> Version | None:
    """The version of a release tag (``X.Y.Z`` or ``vX.Y.Z``); pre-releases such as
    ``1.2.3-rc1`` and builds such as ``1.2.3+b7`` are not releases."""
    numbers = _numbers(tag)
    return Version(*numbers) if numbers is not None and len(numbers) == 3 else None


def series(tag: str) -> Series | None:
    """The series a series tag names (``X``, ``X.Y``, ``vX``, ``vX.Y``)."""
    numbers = _numbers(tag)
    return Series(*numbers) if numbers is not None and len(numbers) in (1, 2) else None


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
