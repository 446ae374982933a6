"""Queries on the repository named in the request, as it is before the request. The host
answers each from its index at about the same cost whatever the size of the repository; ask
for what the rule needs, not for every tag. Only valid during ``evaluate``.

Example::

    >>> from tagpolicy_guest import TagOrder, repository
    >>> repository.newest(r"v?1\\.2\\.\\d+").tag                # the newest 1.2.x tag
    '1.2.10'
    >>> [e.tag for e in repository.tags_matching(r"pr-\\d+", TagOrder.NAME)]
    ['pr-17', 'pr-18']
    >>> repository.history_of("1.2.10").changed.actor          # who set it
    'release-bot'
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import _host
from .time import Instant

__all__ = [
    "Stamp",
    "TagHistory",
    "TagOrder",
    "TagQuery",
    "count_tags",
    "digest_of",
    "find_tags",
    "history_of",
    "newest",
    "tags_matching",
    "tags_of",
]

#: How :func:`find_tags` orders its answer (the contract's ``tag-order``):
#: ``TagOrder.NAME``, by name byte by byte, ascending (a registry's tag list), or
#: ``TagOrder.NEWEST_FIRST``, by the numbers in the tag compared one after the other as
#: numbers, highest first (``1.10.0`` before ``1.9.3``, ``2`` before ``1.12``, ``1.2.3``
#: before ``1.2``), then by name, descending. Text between the numbers does not order tags,
#: so give a pattern that matches only the tags you compare (``v?1\.2\.\d+``).
#:
#: Example::
#:
#:     >>> from tagpolicy_guest import TagOrder, repository
#:     >>> [e.tag for e in repository.tags_matching(r"v?\d+(\.\d+)*", TagOrder.NEWEST_FIRST)]
#:     ['v1.3.0', '1.2.10', '1.2.9']
#:     >>> [e.tag for e in repository.tags_matching(r"v?\d+(\.\d+)*", TagOrder.NAME)]
#:     ['1.2.10', '1.2.9', 'v1.3.0']
TagOrder: Any = _host.types.TagOrder

#: A question for :func:`find_tags` (the contract's ``tag-query``):
#: ``TagQuery(pattern, order, limit, after)``: the tags whose WHOLE name matches
#: ``pattern``, in ``order``, at most ``limit`` of them (the host answers at most 1000 per
#: call), after the tag ``after`` (the last entry of the previous page, or None).
#:
#: Example::
#:
#:     >>> from tagpolicy_guest import TagOrder, repository
#:     >>> from tagpolicy_guest.repository import TagQuery
#:     >>> query = TagQuery(pattern=r"pr-\d+", order=TagOrder.NAME, limit=1, after="pr-17")
#:     >>> [e.tag for e in repository.find_tags(query)]
#:     ['pr-18']
TagQuery: Any = _host.types.TagQuery

#: Tags a page holds when :func:`tags_matching` reads a repository (the host's largest page).
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Stamp:
    """When a tag was set, and by whom, as the hosts recorded it.

    Example::

        >>> from tagpolicy_guest import repository
        >>> changed = repository.history_of("latest").changed
        >>> str(changed.at), changed.actor
        ('2026-12-22T10:00:00Z', 'ci-bot')
    """

    at: Instant
    #: The actor's id; None for an anonymous actor.
    actor: str | None


@dataclass(frozen=True, slots=True)
class TagHistory:
    """What the hosts know of a tag's past: only changes made through them (a ``tagpolicy
    serve`` gate, a scenario's earlier steps), never what happened before they kept records
    or around them.

    Example::

        >>> from tagpolicy_guest import repository
        >>> history = repository.history_of("latest")
        >>> str(history.created.at), history.created.actor      # created anonymously
        ('2026-01-05T08:00:00Z', None)
        >>> history.changed == history.created                  # it moved since
        False
    """

    #: When the tag got the digest it points at now, and who set it.
    changed: Stamp
    #: When the tag was created, and who created it: the same as :attr:`changed` for a tag
    #: that never moved; None for a tag created before the records begin (and moved since).
    created: Stamp | None


def find_tags(query: Any) -> list[Any]:
    """One page of the tags (``.tag``, ``.digest``) matching a :data:`TagQuery`: fewer than
    ``query.limit`` means there are no more. Most rules want :func:`tags_matching` or
    :func:`newest` instead.

    Raises ``RuntimeError`` if the host refuses the query (an invalid pattern, a limit of
    0): the pattern is the policy's own, and a policy that cannot ask its question must not
    answer (the SDK then denies, saying why).

    Example::

        >>> from tagpolicy_guest import TagOrder, repository
        >>> from tagpolicy_guest.repository import TagQuery
        >>> page = repository.find_tags(TagQuery(pattern=".*", order=TagOrder.NAME, limit=2, after=None))
        >>> [(e.tag, e.digest[:11]) for e in page]
        [('1.2.10', 'sha256:2222'), ('1.2.9', 'sha256:1111')]
        >>> more = repository.find_tags(TagQuery(pattern=".*", order=TagOrder.NAME, limit=2, after=page[-1].tag))
        >>> [e.tag for e in more]
        ['latest', 'pr-17']
    """
    try:
        return _host.repository.find_tags(query)
    except _host.Err as err:
        raise RuntimeError(f"the query `{query.pattern}` was refused: {err.value}") from None


def newest(pattern: str) -> Any | None:
    """The tag (``.tag``, ``.digest``) matching ``pattern`` (whole) with the highest version
    (see :data:`TagOrder`), if any: ``newest(r"v?1\\.2\\.\\d+")`` is the newest ``1.2.x``
    release, however many tags there are.

    Example::

        >>> from tagpolicy_guest import repository
        >>> newest = repository.newest(r"v?1\\.2\\.\\d+")
        >>> newest.tag, newest.digest[:11]
        ('1.2.10', 'sha256:2222')
        >>> repository.newest(r"v?2\\.\\d+\\.\\d+") is None
        True
    """
    page = find_tags(TagQuery(pattern=pattern, order=TagOrder.NEWEST_FIRST, limit=1, after=None))
    return page[0] if page else None


def tags_matching(pattern: str, order: Any) -> Iterator[Any]:
    """Every tag (``.tag``, ``.digest``) matching ``pattern`` (whole), in ``order`` (a
    :data:`TagOrder`), read from the host a page at a time as the generator is consumed:
    stop early and the rest is never read.

    Example::

        >>> from tagpolicy_guest import TagOrder, repository
        >>> for entry in repository.tags_matching(r"pr-\\d+", TagOrder.NEWEST_FIRST):
        ...     print(entry.tag)
        pr-18
        pr-17
    """
    after: str | None = None
    while True:
        page = find_tags(TagQuery(pattern=pattern, order=order, limit=_PAGE, after=after))
        yield from page
        if len(page) < _PAGE:
            return
        after = page[-1].tag


def count_tags() -> int:
    """How many tags the repository has.

    Example::

        >>> from tagpolicy_guest import repository
        >>> repository.count_tags()
        6
    """
    return _host.repository.count_tags()


def digest_of(tag: str) -> str | None:
    """The digest ``tag`` points at, or None if the tag does not exist.

    Example::

        >>> from tagpolicy_guest import repository
        >>> repository.digest_of("latest") == repository.digest_of("v1.3.0")
        True
        >>> repository.digest_of("1.3.1") is None                  # pushed by this request
        True
    """
    return _host.repository.digest_of(tag)


def tags_of(digest: str) -> list[str]:
    """The tags that point at ``digest``, ordered by tag name (empty if none).

    Example::

        >>> from tagpolicy_guest import repository
        >>> repository.tags_of(repository.digest_of("latest"))
        ['latest', 'v1.3.0']
    """
    return _host.repository.tags_of(digest)


def history_of(tag: str) -> TagHistory | None:
    """What the hosts recorded of ``tag``: when it got its current digest and who set it
    (:attr:`TagHistory.changed`), and when it was created (:attr:`TagHistory.created`).
    None when the tag does not exist, or its last change is not known (it is older than the
    records, or it was changed around the hosts).

    Example::

        >>> from tagpolicy_guest import repository
        >>> history = repository.history_of("1.2.10")
        >>> str(history.changed.at), history.changed.actor
        ('2026-12-20T09:00:00Z', 'release-bot')
        >>> repository.history_of("pr-17") is None                 # no record of it
        True
    """
    raw = _host.repository.history_of(tag)
    if raw is None:
        return None
    return TagHistory(_stamp(raw.changed), None if raw.created is None else _stamp(raw.created))


def _stamp(raw: Any) -> Stamp:
    return Stamp(Instant(raw.at.seconds, raw.at.nanoseconds), raw.actor)
