"""The request being decided, and one view over every kind of request: the tags it touches
and how (:meth:`Request.changes`).

Example::

    >>> [(change.tag, change.verb) for change in request.changes()]
    [('1.3.1', 'create'), ('latest', 'move')]
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from . import _host
from .time import Instant

__all__ = ["Change", "ChangeKind", "Request"]


class ChangeKind(enum.Enum):
    """How a request changes one tag. Its value is the verb of :attr:`Change.verb`.

    Example::

        >>> from tagpolicy_guest import ChangeKind
        >>> [change.kind for change in request.changes()] == [ChangeKind.CREATE, ChangeKind.MOVE]
        True
    """

    #: A push to a tag that does not exist yet.
    CREATE = "create"
    #: A push that points an existing tag at another digest.
    MOVE = "move"
    #: A push of the digest the tag already points at (a retry, a multi-arch re-push).
    IDENTICAL = "re-push"
    #: A tag deletion, directly or by deleting the manifest it points at.
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Change:
    """One tag touched by a request.

    Example::

        >>> change = request.changes()[1]
        >>> change.tag, change.kind.name, change.from_[:11], change.to[:11]
        ('latest', 'MOVE', 'sha256:3333', 'sha256:7777')
    """

    tag: str
    kind: ChangeKind
    #: The digest the tag points at before the request (None if it does not exist).
    from_: str | None
    #: The digest the tag points at after the request (None for a deletion).
    to: str | None

    @property
    def is_identical(self) -> bool:
        """Whether the tag ends up exactly where it was.

        Example::

            >>> [change.is_identical for change in request.changes()]
            [False, False]
        """
        return self.kind is ChangeKind.IDENTICAL

    @property
    def verb(self) -> str:
        """The verb for messages: "create", "move", "re-push" or "delete".

        Example::

            >>> for change in request.changes():
            ...     print(f"may not {change.verb} `{change.tag}`")
            may not create `1.3.1`
            may not move `latest`
        """
        return self.kind.value


class Request:
    """One request to decide: what is asked (:attr:`operation`, or more simply
    :meth:`changes` and :meth:`push`) and when (:attr:`time`). Where and who asks are one
    host call away: :meth:`repository` and :meth:`actor`.

    Example::

        >>> str(request.time), str(request.time.date_time().weekday)
        ('2026-12-24T17:00:00Z', 'thursday')
        >>> type(request.operation).__name__
        'Operation_Push'
    """

    __slots__ = ("operation", "time")

    def __init__(self, raw: Any) -> None:
        #: The operation as the contract gives it: ``Operation_Push``,
        #: ``Operation_DeleteTags`` or ``Operation_DeleteManifest``, each with ``.value``.
        self.operation: Any = raw.operation
        #: When the request is made, as the host says.
        self.time: Instant = Instant(raw.time.seconds, raw.time.nanoseconds)

    def changes(self) -> list[Change]:
        """Every tag the request touches, in request order.

        Example::

            >>> [(change.tag, change.kind.value) for change in request.changes()]
            [('1.3.1', 'create'), ('latest', 'move')]
        """
        op = self.operation
        if isinstance(op, _host.types.Operation_Push):
            digest = op.value.digest
            return [
                Change(
                    c.tag,
                    ChangeKind.CREATE
                    if c.current is None
                    else ChangeKind.IDENTICAL
                    if c.current == digest
                    else ChangeKind.MOVE,
                    c.current,
                    digest,
                )
                for c in op.value.tags
            ]
        if isinstance(op, _host.types.Operation_DeleteTags):
            return [Change(c.tag, ChangeKind.DELETE, c.current, None) for c in op.value]
        deletion = op.value
        return [Change(tag, ChangeKind.DELETE, deletion.digest, None) for tag in deletion.tags]

    def push(self) -> Any | None:
        """The push (``.digest``, and ``.tags``: each ``.tag`` with its ``.current`` digest),
        if the request is a push.

        Example::

            >>> push = request.push()
            >>> push.digest[:11], [(t.tag, t.current and t.current[:11]) for t in push.tags]
            ('sha256:7777', [('1.3.1', None), ('latest', 'sha256:3333')])
        """
        op = self.operation
        return op.value if isinstance(op, _host.types.Operation_Push) else None

    def repository(self) -> str:
        """The repository the request is for, e.g. ``team/app``. A host call: ask once.

        Example::

            >>> request.repository()
            'team/app'
        """
        return _host.context.repository_name()

    def actor(self) -> Any:
        """Who asks, as the host established it: ``.id`` (None when anonymous) and
        ``.groups``. A host call: ask once.

        Example::

            >>> actor = request.actor()
            >>> actor.id, actor.groups
            ('release-bot', ['maintainers'])
        """
        return _host.context.requested_by()
