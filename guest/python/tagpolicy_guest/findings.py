"""Collect denials and warnings, then turn them into one :class:`Decision`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from . import _host

__all__ = ["Decision", "Finding", "Findings"]


@dataclass(frozen=True, slots=True)
class Finding:
    """Why a request is refused or reported: about one tag, or (``tag=None``) the request
    as a whole."""

    tag: str | None
    #: One line a person can act on.
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    """A policy's answer. A denial refuses the whole request: no tag of it is applied."""

    outcome: Literal["allow", "warn", "deny"]
    findings: tuple[Finding, ...] = ()

    def report(self) -> None:
        """Tell the host: each finding through ``verdict`` (nothing for an allow)."""
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
    makes it a warning, otherwise it allows. ``evaluate`` receives one and fills it."""

    __slots__ = ("_denials", "_warnings")

    def __init__(self) -> None:
        self._denials: list[Finding] = []
        self._warnings: list[Finding] = []

    def deny(self, tag: str, reason: str) -> None:
        """Refuse the request because of ``tag``."""
        self._denials.append(Finding(tag, reason))

    def deny_request(self, reason: str) -> None:
        """Refuse the request as a whole (no single tag is to blame)."""
        self._denials.append(Finding(None, reason))

    def warn(self, tag: str, reason: str) -> None:
        """Report something about ``tag`` without refusing."""
        self._warnings.append(Finding(tag, reason))

    def warn_request(self, reason: str) -> None:
        """Report something about the request as a whole without refusing."""
        self._warnings.append(Finding(None, reason))

    @property
    def is_denied(self) -> bool:
        """Whether something was denied so far."""
        return bool(self._denials)

    def decision(self) -> Decision:
        """The decision: the denials if any (warnings are then dropped), else the warnings,
        else an allow."""
        if self._denials:
            return Decision("deny", tuple(self._denials))
        if self._warnings:
            return Decision("warn", tuple(self._warnings))
        return Decision("allow")
