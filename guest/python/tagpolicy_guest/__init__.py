"""The Python SDK for tagpolicy policies.

A policy is a module ``policy.py`` that subclasses :class:`Policy` and exports it (see the
example). ``tagpolicy build`` turns the folder (with its ``pyproject.toml``) into a component
with componentize-py. Regular expressions (:class:`Pattern`) are evaluated by the host, so
their syntax is the same in every language. The repository as it is before the request is
read with :mod:`tagpolicy_guest.repository`, the facts of its images with
:mod:`tagpolicy_guest.image`, and the time of the request is ``request.time``
(:mod:`tagpolicy_guest.time` reads it as a calendar date). The repository is asked
questions, never listed whole: the tags matching a pattern
(:func:`~tagpolicy_guest.repository.tags_matching`,
:func:`~tagpolicy_guest.repository.newest`), a tag's digest or history, the tags of a
digest. The host answers them from its index at the same cost whatever the size of the
repository.

Example::

    from dataclasses import dataclass
    import tagpolicy_guest
    from tagpolicy_guest import Findings, Pattern, Request

    @dataclass
    class Settings:
        protected: Pattern

    class ReleaseBotOnly(tagpolicy_guest.Policy):
        \"\"\"Tags matching `protected` may only be changed by the actor `release-bot`.\"\"\"

        NAME = "release-bot-only"
        VERSION = "0.1.0"
        DESCRIPTION = "Only release-bot changes protected tags"
        SETTINGS_EXAMPLE = r'{"protected": "v\\\\d+.*"}'
        SETTINGS = Settings

        def evaluate(self, request: Request, findings: Findings) -> None:
            for change in request.changes():
                if change.is_identical or not self.settings.protected.matches(change.tag):
                    continue
                if request.actor().id != "release-bot":
                    findings.deny(change.tag, f"tag `{change.tag}` is protected: only `release-bot` may {change.verb} it")

    Policy = tagpolicy_guest.export(ReleaseBotOnly)
"""

from . import image, repository, tags, text, time
from .findings import Decision, Finding, Findings
from .pattern import Pattern, Patterns
from .policy import Policy, export
from .repository import TagOrder
from .request import Change, ChangeKind, Request
from .settings import U32, U64, NoSettings, SettingsError, read_as
from .time import DateTime, Instant, Period, TimeOfDay, Weekday

__all__ = [
    "U32",
    "U64",
    "Change",
    "ChangeKind",
    "DateTime",
    "Decision",
    "Finding",
    "Findings",
    "Instant",
    "NoSettings",
    "Pattern",
    "Patterns",
    "Period",
    "Policy",
    "Request",
    "SettingsError",
    "TagOrder",
    "TimeOfDay",
    "Weekday",
    "export",
    "image",
    "read_as",
    "repository",
    "tags",
    "text",
    "time",
]
