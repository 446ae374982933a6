"""Calendar arithmetic and time parsing, as in the Rust SDK (guest/src/time.rs)."""

from __future__ import annotations

import unittest

import fakehost  # noqa: F401
from dataclasses import dataclass

from tagpolicy_guest import Instant, Period, SettingsError, TimeOfDay, Weekday
from tagpolicy_guest.settings import parse
from tagpolicy_guest.time import _civil_from_days, _days_from_civil


class TimeTest(unittest.TestCase):
    def test_instants_round_trip_through_the_calendar(self) -> None:
        for text in ("1970-01-01T00:00:00Z", "2000-02-29T12:34:56Z", "2026-12-24T17:00:00Z", "1969-12-31T23:59:59Z"):
            self.assertEqual(str(Instant.parse(text)), text)
        self.assertEqual(Instant.parse("1970-01-02T00:00:00Z").seconds, 86_400)
        self.assertEqual(Instant.parse("2026-11-27T00:00:00Z").date_time().weekday, Weekday.FRIDAY)
        self.assertEqual(Instant.parse("2000-01-01T00:00:00.5Z").nanoseconds, 500_000_000)
        self.assertEqual(Instant.parse("2000-01-01 00:00:00+00:00"), Instant.parse("2000-01-01t00:00:00z"))
        for day in range(-500_000, 500_000, 7):
            self.assertEqual(_days_from_civil(*_civil_from_days(day)), day)

    def test_instants_are_ordered_in_time(self) -> None:
        self.assertLess(Instant(5, 1), Instant(5, 2))
        self.assertLess(Instant(-1, 999), Instant(0, 0))

    def test_date_time(self) -> None:
        t = Instant.parse("2026-11-28T16:05:09Z").date_time()
        self.assertEqual((t.year, t.month, t.day, t.hour, t.minute, t.second), (2026, 11, 28, 16, 5, 9))
        self.assertEqual(t.weekday, Weekday.SATURDAY)
        self.assertEqual(str(t.time_of_day()), "16:05")

    def test_bad_times_say_what_is_wrong(self) -> None:
        def why(text: str) -> str:
            with self.assertRaises(ValueError) as caught:
                Instant.parse(text)
            return str(caught.exception)

        self.assertIn("no such date", why("2026-02-30T00:00:00Z"))
        self.assertIn("UTC", why("2026-12-24T17:00:00+01:00"))
        self.assertIn("no `T`", why("soon"))
        self.assertIn("ending in `Z`", why("yesterday"), "its `t` splits it, as in Rust")
        self.assertIn("the time is HH:MM:SS", why("2026-01-01T00:00Z"))
        self.assertIn("bad month", why("2026-+1-01T00:00:00Z"))
        with self.assertRaises(ValueError):
            TimeOfDay.parse("25:00")
        with self.assertRaises(ValueError):
            TimeOfDay.parse("1:00")
        self.assertEqual(TimeOfDay.parse("24:00").minutes, 1440)
        self.assertEqual(TimeOfDay.parse("+1:00").minutes, 60, "as Rust's u32 parse, which takes a `+`")
        self.assertEqual(Weekday.parse("Sat"), Weekday.SATURDAY)
        self.assertEqual(Weekday.parse("WEDNESDAY"), Weekday.WEDNESDAY)
        with self.assertRaisesRegex(ValueError, "caturday"):
            Weekday.parse("caturday")


@dataclass
class WithPeriod:
    period: Period


class PeriodTest(unittest.TestCase):
    def test_periods_read_units_largest_first(self) -> None:
        self.assertEqual(Period.parse("15m").seconds, 900)
        self.assertEqual(Period.parse("90s").seconds, 90)
        self.assertEqual(Period.parse("1h30m").seconds, 5400)
        self.assertEqual(Period.parse("7d").seconds, 604_800)
        self.assertEqual(Period.parse("1d2h3m4s").seconds, 93_784)
        self.assertEqual(Period.parse("0015m").seconds, 900)
        self.assertEqual(Period.parse("1h0m").seconds, 3600)
        self.assertEqual(Period.parse("366d").seconds, 366 * 86_400)
        self.assertEqual(Period.parse("365d23h59m60s").seconds, 366 * 86_400)
        self.assertEqual(str(Period.parse("1h30m")), "1h30m")
        self.assertEqual(str(Period.parse("90m")), "90m", "as written")

    def test_bad_periods_say_what_is_wrong(self) -> None:
        def why(text: str) -> str:
            with self.assertRaises(ValueError) as caught:
                Period.parse(text)
            return str(caught.exception)

        for bad in ("15", "m", "15x", "30m1h", "1m1m", "-5m", "+5m", "1.5h", "15M", "15m ", " 15m", "1h30",
                    "99999999999999999999s", "9223372036854775808s", "١٥m", "15mm"):
            self.assertEqual(why(bad), f"`{bad}` is not a period such as `90s`, `15m`, `1h30m` or `7d`", bad)
        for long in ("367d", "366d1s", "8784h1s", "9223372036854775807s", "106751991167301d"):
            self.assertEqual(why(long), f"`{long}` is longer than 366 days", long)
        self.assertEqual(why("367d1x"), "`367d1x` is longer than 366 days", "read from the left, as in Rust")
        for nothing in ("", "0s", "0d0h"):
            self.assertEqual(why(nothing), f"`{nothing}` is no time at all; give a period such as `15m`", nothing)

    def test_contains_to_the_nanosecond(self) -> None:
        period = Period.parse("15m")
        self.assertTrue(period.contains(Instant(1000), Instant(1900)))
        self.assertTrue(period.contains(Instant(1000), Instant(1000)), "at once")
        self.assertFalse(period.contains(Instant(1000), Instant(1901)))
        self.assertFalse(period.contains(Instant(1000), Instant(999)), "not before it began")
        self.assertTrue(period.contains(Instant(1000, 1), Instant(1900, 1)))
        self.assertFalse(period.contains(Instant(1000, 0), Instant(1900, 1)), "one nanosecond too late")
        self.assertTrue(period.contains(Instant(999, 999_999_999), Instant(1899, 999_999_999)))
        self.assertFalse(period.contains(Instant(1000, 1), Instant(1000, 0)), "one nanosecond before")
        self.assertTrue(period.contains(Instant(-100), Instant(800)))

    def test_periods_in_settings(self) -> None:
        self.assertEqual(parse('{"period": "1h"}', WithPeriod).period, Period(3600, "1h"))
        with self.assertRaises(SettingsError) as caught:
            parse('{"period": "1h1h"}', WithPeriod)
        self.assertEqual(str(caught.exception),
                         "settings.period: `1h1h` is not a period such as `90s`, `15m`, `1h30m` or `7d`")
        with self.assertRaises(SettingsError) as caught:
            parse('{"period": 15}', WithPeriod)
        self.assertEqual(str(caught.exception), "settings.period: invalid type: integer `15`, expected a string")


if __name__ == "__main__":
    unittest.main()
