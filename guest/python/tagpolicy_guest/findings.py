"""Collect denials and warnings, then turn them into one :class:`Decision`.

Example::

    >>> from tagpolicy_guest import Findings
    >>> findings = Findings()
    >>> findings.warn("latest", "`latest` moves: pin a release instead")
    >>> findings.decision().outcome
    'warn'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from . import _host

__all__ = ["Decision", "Finding", "Findings"]


@dataclass(frozen=True, slots=True)
class Finding:
    """Why a request is refused or reported: about one tag, or (``tag=None``) the request
    as a whole.

    Example::

        >>> from tagpolicy_guest import Finding
        >>> Finding("latest", "`latest` is protected")
        Finding(tag='latest', reason='`latest` is protected')
    """

    tag: str | None
    #: One line a person can act on.
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    """A policy's answer. A denial refuses the whole request: no tag of it is applied.
    ``evaluate`` does not return one: :meth:`Findings.decision` builds it from the findings.

    Example::

        >>> from tagpolicy_guest import Findings
        >>> findings = Findings()
        >>> findings.deny("1.3.1", "releases are pushed by release-bot")
        >>> decision = findings.decision()
        >>> decision.outcome, [f.tag for f in decision.findings]
        ('deny', ['1.3.1'])
    """

    outcome: Literal["allow", "warn", "deny"]
    findings: tuple[Finding, ...] = ()

    def report(self) -> None:
        """Tell the host: each finding through ``verdict`` (nothing for an allow). The SDK
        calls it after ``evaluate``; a policy has no need to.

        Example::

            >>> from tagpolicy_guest import Decision, Finding
            >>> Decision("warn", (Finding("latest", "`latest` moves"),)).report()
        """
        if self.outcome == "warn":
            for finding in self.findings:
                _host.verdict.warn(finding.tag, finding.reason)
        elif self.outcome == "deny":
            # A denial must say why, or the host could not tell it from an allow.
            if not self.findings:
                _host.verdict.deny(None, "denied without a reason")
            for finding in self.findings:
                _host.verdict.deny(finding.tag, finding.reason)


class Findings:
    """A decision under construction: any denial makes it a denial, otherwise any warning
    makes it a warning, otherwise it allows. ``evaluate`` receives one and fills it.

    Example::

        >>> from tagpolicy_guest import Findings
        >>> findings = Findings()
        >>> findings.decision().outcome
        'allow'
    """

    __slots__ = ("_denials", "_warnings")

    def __init__(self) -> None:
        self._denials: list[Finding] = []
        self._warnings: list[Finding] = []

    def deny(self, tag: str, reason: str) -> None:
        """Refuse the request because of ``tag``.

        Example::

            >>> for change in request.changes():
            ...     if change.tag == "latest" and change.verb == "move":
            ...         findings.deny(change.tag, "`latest` only moves in the release job")
            >>> findings.decision().findings
            (Finding(tag='latest', reason='`latest` only moves in the release job'),)
        """
        self._denials.append(Finding(tag, reason))

    def deny_request(self, reason: str) -> None:
        """Refuse the request as a whole (no single tag is to blame).

        Example::

            >>> if request.actor().id is None:
            ...     findings.deny_request("anonymous pushes are refused")
            >>> findings.is_denied
            False
        """
        self._denials.append(Finding(None, reason))

    def warn(self, tag: str, reason: str) -> None:
        """Report something about ``tag`` without refusing.

        Example::

            >>> findings.warn("latest", "`latest` moves: consumers should pin a release")
            >>> findings.decision().outcome
            'warn'
        """
        self._warnings.append(Finding(tag, reason))

    def warn_request(self, reason: str) -> None:
        """Report something about the request as a whole without refusing.

        Example::

            >>> findings.warn_request("pushed outside the release window")
            >>> findings.decision().findings[0].tag is None
            True
        """
        self._warnings.append(Finding(None, reason))

    @property
    def is_denied(self) -> bool:
        """Whether something was denied so far.

        Example::

            >>> findings.deny("1.3.1", "no signature")
            >>> findings.is_denied
            True
        """
        return bool(self._denials)

    def decision(self) -> Decision:
        """The decision: the denials if any (warnings are then dropped), else the warnings,
        else an allow.

        Example::

            >>> findings.warn("latest", "moves")
            >>> findings.deny("1.3.1", "no signature")
            >>> findings.decision()
            Decision(outcome='deny', findings=(Finding(tag='1.3.1', reason='no signature'),))
        """
        if self._denials:
            return Decision("deny", tuple(self._denials))
        if self._warnings:
            return Decision("warn", tuple(self._warnings))
        return Decision("allow")
