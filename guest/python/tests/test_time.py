"""Calendar arithmetic and time parsing, as in the Rust SDK (guest/src/time.rs)."""

from __future__ import annotations

import unittest

import fakehost  # noqa: F401
from tagpolicy_guest import Instant, TimeOfDay, Weekday
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


if __name__ == "__main__":
    unittest.main()
