"""The request's time in calendar terms (UTC), and the parsing of times in settings: RFC 3339
instants, weekdays, times of day and periods (``15m``).

A policy has no clock; ``request.time`` is the only time it sees, given by the host (a
scenario fixes it, a gate uses its clock). The calendar arithmetic is written out (no
``datetime``) so that it is exactly the Rust SDK's, also for years outside 1..9999.

Example::

    >>> from tagpolicy_guest import Period, TimeOfDay, Weekday
    >>> now = request.time.date_time()
    >>> now.weekday in (Weekday.SATURDAY, Weekday.SUNDAY), str(now.time_of_day())
    (False, '17:00')
    >>> now.time_of_day() >= TimeOfDay.parse("16:00")
    True
    >>> Period.parse("7d").contains(request.time, request.time)
    True
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .settings import read_as

__all__ = ["DateTime", "Instant", "Period", "TimeOfDay", "Weekday"]


@read_as(str, via="parse")
class Weekday(enum.Enum):
    """A day of the week; its value (and ``str()``) is the lowercase English name. In
    settings it is written as :meth:`parse` reads it.

    Example::

        >>> from tagpolicy_guest import Weekday
        >>> request.time.date_time().weekday is Weekday.THURSDAY
        True
        >>> str(Weekday.SATURDAY)
        'saturday'
    """

    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @classmethod
    def parse(cls, text: str) -> Weekday:
        """``mon`` … ``sun`` or the full English name, in any case; raise ``ValueError``
        saying what is expected.

        Example::

            >>> from tagpolicy_guest import Weekday
            >>> Weekday.parse("Sat"), Weekday.parse("friday")
            (<Weekday.SATURDAY: 'saturday'>, <Weekday.FRIDAY: 'friday'>)
        """
        lower = _ascii_lower(text)
        for day in cls:
            if lower in (day.value, day.value[:3]):
                return day
        raise ValueError(f"`{text}` is not a day of the week (mon, tue, … sun)")

    def __str__(self) -> str:
        return self.value


@read_as(str, via="parse")
@dataclass(frozen=True, order=True, slots=True)
class TimeOfDay:
    """A time of day, ``HH:MM``, from ``00:00`` to ``24:00`` (the end of the day).
    Ordered; ``str()`` gives ``HH:MM``. In settings it is written as :meth:`parse` reads it.

    Example::

        >>> from tagpolicy_guest import TimeOfDay
        >>> opens, closes = TimeOfDay.parse("09:00"), TimeOfDay.parse("17:30")
        >>> opens <= request.time.date_time().time_of_day() < closes
        True
        >>> closes.minutes, str(closes)
        (1050, '17:30')
    """

    #: Minutes since midnight, 0 to 1440.
    minutes: int

    @classmethod
    def parse(cls, text: str) -> TimeOfDay:
        """Parse ``HH:MM``; the ``ValueError`` says what is expected.

        Example::

            >>> from tagpolicy_guest import TimeOfDay
            >>> TimeOfDay.parse("24:00")
            TimeOfDay(minutes=1440)
            >>> TimeOfDay.parse("9:30")
            Traceback (most recent call last):
            ...
            ValueError: `9:30` is not a time of day such as `09:30` (00:00 to 24:00)
        """
        wrong = ValueError(f"`{text}` is not a time of day such as `09:30` (00:00 to 24:00)")
        hours, colon, minutes = text.partition(":")
        if not colon or _utf8_len(hours) != 2 or _utf8_len(minutes) != 2:
            raise wrong
        h, m = _parse_u32(hours), _parse_u32(minutes)
        if h is None or m is None or m > 59 or h > 24 or (h == 24 and m > 0):
            raise wrong
        return cls(h * 60 + m)

    def __str__(self) -> str:
        return f"{self.minutes // 60:02}:{self.minutes % 60:02}"


@dataclass(frozen=True, slots=True)
class DateTime:
    """A date and time in UTC, to the second: what :meth:`Instant.date_time` gives.

    Example::

        >>> now = request.time.date_time()
        >>> now.year, now.month, now.day, now.hour, now.minute, now.second
        (2026, 12, 24, 17, 0, 0)
    """

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    weekday: Weekday

    def time_of_day(self) -> TimeOfDay:
        """The time of day, to the minute.

        Example::

            >>> str(request.time.date_time().time_of_day())
            '17:00'
        """
        return TimeOfDay(self.hour * 60 + self.minute)


_WEEKDAYS = tuple(Weekday)


@read_as(str, via="parse")
@dataclass(frozen=True, order=True, slots=True)
class Instant:
    """A point in time (UTC): seconds since the Unix epoch and nanoseconds within the second.
    Ordered in time; ``str()`` gives RFC 3339 to the second, e.g. ``2026-12-24T17:00:00Z``.
    ``request.time`` is one; in settings it is written as :meth:`parse` reads it.

    Example::

        >>> from tagpolicy_guest import Instant
        >>> request.time
        Instant(seconds=1798131600, nanoseconds=0)
        >>> request.time < Instant.parse("2027-01-01T00:00:00Z")
        True
    """

    seconds: int
    nanoseconds: int = 0

    @classmethod
    def parse(cls, text: str) -> Instant:
        """Parse an RFC 3339 time in UTC, ``2026-12-24T17:00:00Z`` (a ``+00:00`` offset and
        fractions of a second are accepted; other offsets are refused: say the time in UTC).
        The ``ValueError`` says what is wrong.

        Example::

            >>> from tagpolicy_guest import Instant
            >>> Instant.parse("2026-12-24T17:00:00.5Z")
            Instant(seconds=1798131600, nanoseconds=500000000)
            >>> Instant.parse("2026-12-24T18:00:00+01:00")
            Traceback (most recent call last):
            ...
            ValueError: `2026-12-24T18:00:00+01:00` is not a UTC time such as `2026-12-24T17:00:00Z`: give the time in UTC, ending in `Z`
        """

        def wrong(why: str) -> ValueError:
            return ValueError(f"`{text}` is not a UTC time such as `2026-12-24T17:00:00Z`: {why}")

        def number(part: str, what: str) -> int:
            value = _parse_u32(part) if _all_digits(part) else None
            if value is None:
                raise wrong(f"bad {what}")
            return value

        cut = min((i for i in (text.find("T"), text.find("t"), text.find(" ")) if i >= 0), default=-1)
        if cut < 0:
            raise wrong("no `T`")
        date, rest = text[:cut], text[cut + 1 :]
        if rest.endswith(("Z", "z")):
            time = rest[:-1]
        elif rest.endswith("+00:00"):
            time = rest[: -len("+00:00")]
        else:
            raise wrong("give the time in UTC, ending in `Z`")
        parts = date.split("-")
        if len(parts) != 3:
            raise wrong("the date is YYYY-MM-DD")
        year, month, day = number(parts[0], "year"), number(parts[1], "month"), number(parts[2], "day")
        clock, _, fraction = time.partition(".")
        hms = clock.split(":")
        if len(hms) != 3:
            raise wrong("the time is HH:MM:SS")
        hour, minute, second = number(hms[0], "hour"), number(hms[1], "minute"), number(hms[2], "second")
        if not 1 <= month <= 12 or day == 0 or day > _days_in_month(year, month):
            raise wrong("no such date")
        if hour > 23 or minute > 59 or second > 59:
            raise wrong("no such time")
        nanoseconds = number(fraction[:9].ljust(9, "0"), "fraction") if fraction else 0
        days = _days_from_civil(year, month, day)
        return cls(days * 86_400 + hour * 3600 + minute * 60 + second, nanoseconds)

    def date_time(self) -> DateTime:
        """The calendar date and time in UTC.

        Example::

            >>> from tagpolicy_guest import Instant
            >>> Instant.parse("2000-02-29T12:34:56Z").date_time()
            DateTime(year=2000, month=2, day=29, hour=12, minute=34, second=56, weekday=<Weekday.TUESDAY: 'tuesday'>)
        """
        days, second_of_day = divmod(self.seconds, 86_400)
        year, month, day = _civil_from_days(days)
        return DateTime(
            year=year,
            month=month,
            day=day,
            hour=second_of_day // 3600,
            minute=second_of_day // 60 % 60,
            second=second_of_day % 60,
            # 1970-01-01 was a Thursday.
            weekday=_WEEKDAYS[(days + 3) % 7],
        )

    def __str__(self) -> str:
        t = self.date_time()
        return f"{t.year:04}-{t.month:02}-{t.day:02}T{t.hour:02}:{t.minute:02}:{t.second:02}Z"


@read_as(str, via="parse")
@dataclass(frozen=True, slots=True)
class Period:
    """A length of time in settings: numbers with units ``d``, ``h``, ``m`` or ``s``, largest
    first (``90s``, ``15m``, ``1h30m``, ``7d``), at most 366 days. ``str()`` gives it as
    written, for messages. In settings it is written as :meth:`parse` reads it.

    Example::

        >>> from tagpolicy_guest import Period
        >>> grace = Period.parse("1h30m")
        >>> grace.seconds, str(grace)
        (5400, '1h30m')
    """

    #: The length, in seconds (1 to 366 days).
    seconds: int
    #: As written.
    text: str

    @classmethod
    def parse(cls, text: str) -> Period:
        """Parse a period such as ``1h30m``; the ``ValueError`` says what is expected.

        Example::

            >>> from tagpolicy_guest import Period
            >>> Period.parse("15m").seconds
            900
            >>> Period.parse("30m1h")
            Traceback (most recent call last):
            ...
            ValueError: `30m1h` is not a period such as `90s`, `15m`, `1h30m` or `7d`
        """

        def invalid() -> ValueError:
            return ValueError(f"`{text}` is not a period such as `90s`, `15m`, `1h30m` or `7d`")

        seconds, rest = 0, text
        # The unit read last: each must be smaller than the one before.
        last: int | None = None
        while rest:
            digits = next((i for i, c in enumerate(rest) if not "0" <= c <= "9"), None)
            if digits is None:
                raise invalid()
            number = _parse_i64(rest[:digits])
            position = _PERIOD_UNITS.get(rest[digits])
            if number is None or position is None or (last is not None and position <= last):
                raise invalid()
            last = position
            seconds += number * _PERIOD_SECONDS[position]
            if seconds > _PERIOD_MAX_SECONDS:
                raise ValueError(f"`{text}` is longer than 366 days")
            rest = rest[digits + 1 :]
        if seconds == 0:
            raise ValueError(f"`{text}` is no time at all; give a period such as `15m`")
        return cls(seconds, text)

    def contains(self, since: Instant, now: Instant) -> bool:
        """Whether ``since`` is at most this long before ``now`` (and not after it), to the
        nanosecond. Takes any two instants with ``.seconds`` and ``.nanoseconds``.

        Example::

            >>> from tagpolicy_guest import Period, repository
            >>> changed = repository.history_of("latest").changed.at     # 2026-12-22T10:00:00Z
            >>> Period.parse("7d").contains(changed, request.time), Period.parse("1d").contains(changed, request.time)
            (True, False)
        """
        age = (now.seconds - since.seconds) * 1_000_000_000 + (now.nanoseconds - since.nanoseconds)
        return 0 <= age <= self.seconds * 1_000_000_000

    def __str__(self) -> str:
        return self.text


#: The units of a period, largest first: their position, and their length in seconds.
_PERIOD_UNITS = {"d": 0, "h": 1, "m": 2, "s": 3}
_PERIOD_SECONDS = (86_400, 3_600, 60, 1)
_PERIOD_MAX_SECONDS = 366 * 86_400


def _ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _all_digits(text: str) -> bool:
    return text != "" and all("0" <= c <= "9" for c in text)


def _parse_u32(text: str) -> int | None:
    """Rust's ``str::parse::<u32>``: an optional ``+``, then ASCII digits, at most 2^32 - 1."""
    digits = text[1:] if text.startswith("+") else text
    if not _all_digits(digits):
        return None
    value = int(digits)
    return value if value <= 0xFFFF_FFFF else None


def _parse_i64(text: str) -> int | None:
    """Rust's ``str::parse::<i64>`` of ASCII digits: at most 2^63 - 1."""
    if not _all_digits(text):
        return None
    value = int(text)
    return value if value <= 2**63 - 1 else None


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date: count whole 400-year eras
    (146,097 days each) from 0000-03-01, then the years and days within the era, with March
    as the first month so that February's leap day ends the year."""
    if month <= 2:
        year -= 1
    era, year_of_era = divmod(year, 400)
    month_from_march = (month + 9) % 12
    day_of_year = (153 * month_from_march + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """The inverse of :func:`_days_from_civil`."""
    era, day_of_era = divmod(days + 719_468, 146_097)
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_from_march = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_from_march + 2) // 5 + 1
    month = month_from_march + 3 if month_from_march < 10 else month_from_march - 9
    return era * 400 + year_of_era + (1 if month <= 2 else 0), month, day
