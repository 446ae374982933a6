"""Release and series tags, as in the Rust SDK (guest/src/tags.rs)."""

from __future__ import annotations

import unittest

from fakehost import HOST, TagOrder
from tagpolicy_guest.tags import Series, Version, newest_release, release, release_pattern, series


class TagsTest(unittest.TestCase):
    def test_releases(self) -> None:
        self.assertEqual(release("1.2.3"), Version(1, 2, 3))
        self.assertEqual(release("v10.0.11"), Version(10, 0, 11))
        self.assertEqual(release("0.0.0"), Version(0, 0, 0))
        for tag in ("1.2", "1.2.3-rc1", "1.2.3+b1", "1.02.3", "V1.2.3", "1..3", "latest", "", "v", "1.2.3.4",
                    "99999999999999999999.0.0", "١.2.3"):
            self.assertIsNone(release(tag), tag)

    def test_series_tags(self) -> None:
        self.assertEqual(series("1.2"), Series(1, 2))
        self.assertEqual(series("v3"), Series(3))
        for tag in ("1.2.3", "latest", "1.x", "01", "v", "1.2-rc1"):
            self.assertIsNone(series(tag), tag)

    def test_series_membership_and_order(self) -> None:
        minor = series("1.2")
        assert minor is not None
        self.assertTrue(minor.contains(Version(1, 2, 11)))
        self.assertFalse(minor.contains(Version(1, 3, 0)))
        major = series("1")
        assert major is not None
        self.assertTrue(major.contains(Version(1, 3, 0)))
        self.assertFalse(major.contains(Version(2, 0, 0)))
        self.assertGreater(Version(1, 2, 10), Version(1, 2, 9), "numeric, not lexical, order")
        self.assertEqual(str(minor), "1.2")
        self.assertEqual(str(Version(1, 2, 3)), "1.2.3")


class NewestReleaseTest(unittest.TestCase):
    def setUp(self) -> None:
        HOST.reset()

    def test_release_patterns(self) -> None:
        number = "(?:0|[1-9][0-9]*)"
        self.assertEqual(release_pattern(Series(1, 2)), f"v?1\\.2\\.{number}")
        self.assertEqual(release_pattern(Series(10)), f"v?10\\.{number}\\.{number}")
        self.assertEqual(release_pattern(None), f"v?{number}\\.{number}\\.{number}")

    def test_the_newest_release_of_a_series_or_of_all(self) -> None:
        HOST.tags = {t: "sha256:a" for t in ("1.2.9", "v1.2.10", "1.2.11-rc1", "1.02.12", "1.3.0", "1.2", "latest",
                                             "2.0.0-rc1", "0.9.0")}
        self.assertEqual(newest_release(Series(1, 2)), Version(1, 2, 10))
        self.assertEqual(newest_release(Series(1)), Version(1, 3, 0))
        self.assertEqual(newest_release(None), Version(1, 3, 0))
        self.assertEqual(newest_release(Series(0, 9)), Version(0, 9, 0))
        self.assertIsNone(newest_release(Series(2)), "a pre-release is no release")
        self.assertIsNone(newest_release(Series(1, 4)))
        queries = [args[0] for name, args in HOST.calls if name == "find_tags"]
        # One query each, for the newest tag alone.
        self.assertEqual({(q.order, q.limit, q.after) for q in queries}, {(TagOrder.NEWEST_FIRST, 1, None)})
        self.assertEqual(queries[0].pattern, release_pattern(Series(1, 2)))

    def test_tags_that_overflow_are_skipped_a_page_at_a_time(self) -> None:
        # The pattern matches these, but their numbers do not fit in 64 bits: no releases.
        HOST.tags = {f"{2**64 + i}.0.0": "sha256:a" for i in range(17)}
        HOST.tags["18446744073709551615.0.0"] = "sha256:b"
        self.assertEqual(newest_release(None), Version(2**64 - 1, 0, 0))
        # The newest alone, then pages of 8.
        queries = [args[0] for name, args in HOST.calls if name == "find_tags"]
        self.assertEqual([(q.after, q.limit) for q in queries],
                         [(None, 1), (f"{2**64 + 16}.0.0", 8), (f"{2**64 + 8}.0.0", 8), (f"{2**64}.0.0", 8)])
        del HOST.tags["18446744073709551615.0.0"]
        HOST.calls.clear()
        self.assertIsNone(newest_release(None))
        self.assertEqual(len([name for name, _ in HOST.calls if name == "find_tags"]), 4)


if __name__ == "__main__":
    unittest.main()
