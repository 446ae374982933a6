"""Release and series tags, as in the Rust SDK (guest/src/tags.rs)."""

from __future__ import annotations

import unittest

import fakehost  # noqa: F401
from tagpolicy_guest.tags import Series, Version, release, series


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


if __name__ == "__main__":
    unittest.main()
