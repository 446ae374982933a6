"""`change-freeze`: during change freezes, chosen tags do not change except by exempt actors.

A window is either fixed (`from` and `until`, RFC 3339 times in UTC) or weekly (`days`, with
an optional `from`/`until` time of day, `00:00` to `24:00`, UTC). While the time of the
request is inside any window, a push that creates or moves a tag matching `tags`, and any
deletion of one, is denied unless the actor is in `exempt_actors` or in a group of
`exempt_groups`. Identical re-pushes change nothing and are allowed.

The Python port of policies/change-freeze: the same decisions, word for word.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tagpolicy_guest
from tagpolicy_guest import ChangeKind, Findings, Instant, Patterns, Request, SettingsError, TimeOfDay, Weekday


@dataclass
class WindowFile:
    """A window as written: fixed (`from`/`until` instants) or weekly (`days`, with
    `from`/`until` times of day)."""

    name: str | None = None
    days: list[Weekday] | None = None
    from_: str | None = None
    until: str | None = None


@dataclass
class Settings:
    windows: list[WindowFile]
    #: The tags that freeze; every tag when empty.
    tags: Patterns = field(default_factory=Patterns)
    exempt_actors: list[str] = field(default_factory=list)
    exempt_groups: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Window:
    name: str
    #: Weekly windows: the days, and times of day in `start`/`end`; fixed windows: None,
    #: and instants in `start`/`end`.
    days: tuple[Weekday, ...] | None
    start: Instant | TimeOfDay
    end: Instant | TimeOfDay

    @classmethod
    def parse(cls, index: int, file: WindowFile) -> Window:
        def at(name: str) -> str:
            return f"settings.windows[{index}].{name}"

        def parsed(name: str, text: str, parse: type[Instant] | type[TimeOfDay]) -> Instant | TimeOfDay:
            try:
                return parse.parse(text)
            except ValueError as err:
                raise SettingsError(f"{at(name)}: {err}") from None

        name = file.name if file.name is not None else f"window {index + 1}"
        if file.days is not None:
            if not file.days:
                raise SettingsError(f"{at('days')}: empty; name at least one day")
            start = parsed("from", file.from_ if file.from_ is not None else "00:00", TimeOfDay)
            end = parsed("until", file.until if file.until is not None else "24:00", TimeOfDay)
            if start >= end:
                raise SettingsError(
                    f"{at('until')}: `{end}` is not after `from` (`{start}`); split a window that crosses midnight"
                )
            return cls(name, tuple(file.days), start, end)
        for what, text in (("from", file.from_), ("until", file.until)):
            if text is None:
                raise SettingsError(f"{at(what)}: missing; a window has `from` and `until` times, or `days`")
            if what == "from":
                start = parsed("from", text, Instant)
            else:
                end = parsed("until", text, Instant)
        if start >= end:
            raise SettingsError(f"{at('until')}: `{end}` is not after `from` (`{start}`)")
        return cls(name, None, start, end)

    def contains(self, time: Instant) -> bool:
        if self.days is None:
            return self.start <= time < self.end
        now = time.date_time()
        return now.weekday in self.days and self.start <= now.time_of_day() < self.end

    def describe(self) -> str:
        if self.days is None:
            return f"`{self.name}` ({self.start} to {self.end})"
        days = ", ".join(day.value for day in self.days)
        return f"`{self.name}` ({days} {self.start} to {self.end} UTC)"


class ChangeFreeze(tagpolicy_guest.Policy):
    # A copy of ../../change-freeze/metadata.json, checked by the tests: componentize-py reads nothing
    # outside this folder.
    NAME = "change-freeze"
    VERSION = "0.1.0"
    DESCRIPTION = "No tag changes during change freezes, except by exempt actors"
    SETTINGS_EXAMPLE = r'{"windows":[{"name":"year-end","from":"2026-12-20T00:00:00Z","until":"2027-01-04T00:00:00Z"},{"name":"weekends","days":["sat","sun"]}],"tags":["v?\\d+\\.\\d+\\.\\d+","latest"],"exempt_groups":["release-managers"]}'
    SETTINGS = Settings
    settings: Settings

    def __init__(self, settings: Settings, windows: list[Window]) -> None:
        super().__init__(settings)
        self.windows = windows

    @classmethod
    def configure(cls, settings: Settings) -> ChangeFreeze:
        if not settings.windows:
            raise SettingsError("settings.windows: empty; give at least one window")
        return cls(settings, [Window.parse(i, file) for i, file in enumerate(settings.windows)])

    def exempt(self, request: Request) -> bool:
        actor = request.actor()
        return (actor.id is not None and actor.id in self.settings.exempt_actors) or any(
            group in self.settings.exempt_groups for group in actor.groups
        )

    def who_may(self) -> str:
        who = [f"`{actor}`" for actor in self.settings.exempt_actors]
        who += [f"members of `{group}`" for group in self.settings.exempt_groups]
        return f"only {', '.join(who)} may change it" if who else "nobody may change it"

    def evaluate(self, request: Request, findings: Findings) -> None:
        window = next((w for w in self.windows if w.contains(request.time)), None)
        if window is None or self.exempt(request):
            return
        for change in request.changes():
            frozen = not self.settings.tags or self.settings.tags.any_match(change.tag)
            if not frozen or change.kind is ChangeKind.IDENTICAL:
                continue
            if change.kind is ChangeKind.DELETE and change.from_ is None:
                continue
            findings.deny(
                change.tag,
                f"tag `{change.tag}` is frozen: change freeze {window.describe()} is in effect at {request.time}; "
                f"{self.who_may()}",
            )


Policy = tagpolicy_guest.export(ChangeFreeze)
