"""Regular expressions, compiled and matched by the host (the RE2-style syntax of Rust's
``regex`` crate), so that settings mean the same in a policy written in any language. The
SDK never uses Python's ``re``: its dialect differs (look-around, ``\\Z``, …).

Example::

    >>> from tagpolicy_guest import Pattern, Patterns
    >>> Pattern(r"v?\\d+\\.\\d+\\.\\d+").matches("v1.3.1")
    True
    >>> Patterns([Pattern("latest"), Pattern(r"pr-\\d+")]).any_match("pr-17")
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from . import _host
from .settings import read_as

__all__ = ["Pattern", "Patterns"]


@read_as(str)
class Pattern:
    """A regular expression matched against the WHOLE text, checked by the host when it is
    created. In settings it is written as a string. ``str(pattern)`` is the expression.

    Example::

        >>> from dataclasses import dataclass
        >>> from tagpolicy_guest import Pattern
        >>> from tagpolicy_guest.settings import parse
        >>> @dataclass
        ... class Settings:
        ...     protected: Pattern
        >>> settings = parse(r'{"protected": "v\\\\d+.*"}', Settings)
        >>> settings.protected
        Pattern('v\\\\d+.*')
        >>> settings.protected.matches("v1.3.1"), settings.protected.matches("latest")
        (True, False)
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        """Check ``text`` with the host; raise ``ValueError`` saying why it is invalid."""
        try:
            _host.patterns.full_match(text, "")
        except _host.Err as err:
            raise ValueError(f"`{text}` is not a valid regex: {err.value}") from None
        #: The expression as written.
        self.text: str = text

    def matches(self, text: str) -> bool:
        """Whether the pattern matches all of ``text``.

        Example::

            >>> from tagpolicy_guest import Pattern
            >>> release = Pattern(r"\\d+\\.\\d+\\.\\d+")
            >>> release.matches("1.3.1"), release.matches("1.3.1-rc1")
            (True, False)
        """
        try:
            return _host.patterns.full_match(self.text, text)
        except _host.Err as err:
            # Checked when created; if the host refuses it now, stop (the host then denies)
            # rather than guess an answer.
            raise RuntimeError(f"pattern `{self.text}` stopped working: {err.value}") from None

    def as_str(self) -> str:
        """The expression as written (as in the Rust SDK).

        Example::

            >>> from tagpolicy_guest import Pattern
            >>> Pattern(r"pr-\\d+").as_str()
            'pr-\\\\d+'
        """
        return self.text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Pattern({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


@read_as(list[Pattern])
class Patterns:
    """A list of patterns; in settings, a list of strings. The host compiles the list once,
    as a set, when the settings are read; matching a text is then one host call for the
    whole list. Iterate over it for its patterns; ``len()`` counts them.

    Example::

        >>> from tagpolicy_guest import Pattern, Patterns
        >>> mutable = Patterns([Pattern("latest"), Pattern(r"pr-\\d+")])
        >>> len(mutable), [p.text for p in mutable]
        (2, ['latest', 'pr-\\\\d+'])
    """

    __slots__ = ("_patterns", "_set")

    def __init__(self, patterns: Iterable[Pattern] = ()) -> None:
        """Prepare ``patterns`` as a set with the host; raise ``ValueError`` naming the
        invalid pattern."""
        self._patterns: tuple[Pattern, ...] = tuple(patterns)
        # The host's handle of the prepared set; None for an empty list.
        self._set: int | None = None
        if self._patterns:
            try:
                self._set = _host.patterns.prepare_set([p.text for p in self._patterns])
            except _host.Err as err:
                raise ValueError(str(err.value)) from None

    def first_match(self, text: str) -> Pattern | None:
        """The first pattern that matches all of ``text``, or None.

        Example::

            >>> from tagpolicy_guest import Pattern, Patterns
            >>> mutable = Patterns([Pattern("latest"), Pattern(r"pr-\\d+")])
            >>> mutable.first_match("pr-17")
            Pattern('pr-\\\\d+')
            >>> mutable.first_match("1.3.1") is None
            True
        """
        if self._set is None:
            return None
        try:
            index = _host.patterns.first_in_set(self._set, text)
        except _host.Err as err:
            # Prepared when the settings were read; see Pattern.matches.
            raise RuntimeError(f"pattern set stopped working: {err.value}") from None
        if index is None or index >= len(self._patterns):
            return None
        return self._patterns[index]

    def any_match(self, text: str) -> bool:
        """Whether any pattern matches all of ``text``.

        Example::

            >>> from tagpolicy_guest import Pattern, Patterns
            >>> Patterns([Pattern("latest"), Pattern(r"pr-\\d+")]).any_match("1.3.1")
            False
        """
        return self.first_match(text) is not None

    def __iter__(self) -> Iterator[Pattern]:
        return iter(self._patterns)

    def __len__(self) -> int:
        return len(self._patterns)

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def __repr__(self) -> str:
        return f"Patterns({[p.text for p in self._patterns]!r})"
