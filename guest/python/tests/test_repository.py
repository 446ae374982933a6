"""Queries on the repository (guest/src/repository.rs), against the fake host, and the fake
host's answers to them (the contract's `repository` interface, wit/policy.wit)."""

from __future__ import annotations

import unittest

from fakehost import HOST, TagHistory, TagOrder, TagQuery, stamp
import tagpolicy_guest
from tagpolicy_guest import Instant, repository


def tags(entries: list) -> list[str]:
    return [entry.tag for entry in entries]


def find(pattern: str, order: TagOrder, limit: int = 1000, after: str | None = None) -> list[str]:
    return tags(repository.find_tags(TagQuery(pattern, order, limit, after)))


class FindTagsTest(unittest.TestCase):
    """The fake host answers `find-tags` as the contract says the host does."""

    def setUp(self) -> None:
        HOST.reset()
        for tag in ("1.9.3", "1.10.0", "1.2", "1.2.3", "v1.2.3", "2", "1.12", "latest", "Latest", "1.02.0", "_x"):
            HOST.tags[tag] = f"sha256:{tag}"

    def test_by_name_is_byte_order(self) -> None:
        self.assertEqual(
            find(".*", TagOrder.NAME),
            ["1.02.0", "1.10.0", "1.12", "1.2", "1.2.3", "1.9.3", "2", "Latest", "_x", "latest", "v1.2.3"],
        )
        self.assertEqual(find("1\\..*", TagOrder.NAME, limit=2), ["1.02.0", "1.10.0"])
        self.assertEqual(find("1\\..*", TagOrder.NAME, limit=2, after="1.10.0"), ["1.12", "1.2"])
        self.assertEqual(find("1\\..*", TagOrder.NAME, after="1.2"), ["1.2.3", "1.9.3"], "after: not a tag needed")
        self.assertEqual(find("1\\..*", TagOrder.NAME, after="1.1"), ["1.10.0", "1.12", "1.2", "1.2.3", "1.9.3"])

    def test_newest_first_compares_the_numbers_as_numbers_then_the_name(self) -> None:
        self.assertEqual(
            find(".*", TagOrder.NEWEST_FIRST),
            # 2 before 1.12; 1.10.0 before 1.9.3; 1.2.3 before 1.2; v1.2.3 and 1.2.3 by name,
            # descending; 1.02.0 is 1.2.0; tags without numbers last, by name descending.
            ["2", "1.12", "1.10.0", "1.9.3", "v1.2.3", "1.2.3", "1.02.0", "1.2", "latest", "_x", "Latest"],
        )
        self.assertEqual(find("v?1\\.\\d+\\.\\d+", TagOrder.NEWEST_FIRST, limit=3), ["1.10.0", "1.9.3", "v1.2.3"])
        self.assertEqual(find("v?1\\.\\d+\\.\\d+", TagOrder.NEWEST_FIRST, limit=3, after="v1.2.3"), ["1.2.3", "1.02.0"])
        self.assertEqual(find(".*", TagOrder.NEWEST_FIRST, after="1.2"), ["latest", "_x", "Latest"])
        self.assertEqual(find(".*", TagOrder.NEWEST_FIRST, after="1.5"), ["v1.2.3", "1.2.3", "1.02.0", "1.2", "latest",
                                                                         "_x", "Latest"], "after: not a tag needed")

    def test_the_whole_tag_must_match(self) -> None:
        self.assertEqual(find("1\\.2", TagOrder.NAME), ["1.2"])
        self.assertEqual(find("atest", TagOrder.NAME), [])
        self.assertEqual(find("(?i)latest", TagOrder.NAME), ["Latest", "latest"])

    def test_a_page_holds_at_most_1000_tags(self) -> None:
        HOST.tags = {f"t{i:04}": "sha256:a" for i in range(1500)}
        self.assertEqual(len(find(".*", TagOrder.NAME, limit=5000)), 1000)
        self.assertEqual(len(find(".*", TagOrder.NEWEST_FIRST, limit=2**32 - 1)), 1000)
        self.assertEqual(find(".*", TagOrder.NEWEST_FIRST, limit=1), ["t1499"])

    def test_entries_carry_digests(self) -> None:
        page = repository.find_tags(TagQuery("1\\.2|2", TagOrder.NAME, 10, None))
        self.assertEqual([(e.tag, e.digest) for e in page], [("1.2", "sha256:1.2"), ("2", "sha256:2")])

    def test_a_refused_query_stops_the_evaluation(self) -> None:
        with self.assertRaisesRegex(RuntimeError, r"^the query `\.\*` was refused: limit: 0; ask for at least one tag$"):
            repository.find_tags(TagQuery(".*", TagOrder.NAME, 0, None))
        with self.assertRaisesRegex(RuntimeError, r"^the query `\(` was refused: "):
            repository.find_tags(TagQuery("(", TagOrder.NAME, 1, None))
        with self.assertRaisesRegex(RuntimeError, r"^the query `\(` was refused: "):
            repository.newest("(")
        with self.assertRaisesRegex(RuntimeError, r"^the query `\(` was refused: "):
            next(repository.tags_matching("(", TagOrder.NAME))


class HelpersTest(unittest.TestCase):
    def setUp(self) -> None:
        HOST.reset()

    def test_newest(self) -> None:
        HOST.tags = {"1.2.9": "sha256:a", "1.2.10": "sha256:b", "1.3.0": "sha256:c", "v1.2.11-rc1": "sha256:d"}
        newest = repository.newest("v?1\\.2\\.\\d+")
        assert newest is not None
        self.assertEqual((newest.tag, newest.digest), ("1.2.10", "sha256:b"))
        self.assertIsNone(repository.newest("2\\..*"))
        self.assertEqual([args[0].limit for name, args in HOST.calls if name == "find_tags"], [1, 1], "one tag asked")

    def test_tags_matching_reads_a_page_at_a_time_as_consumed(self) -> None:
        HOST.tags = {f"pr-{i}": "sha256:a" for i in range(2500)}
        HOST.tags["main"] = "sha256:b"
        matching = repository.tags_matching("pr-\\d+", TagOrder.NEWEST_FIRST)
        self.assertEqual(HOST.calls, [], "nothing is read before the first tag is asked for")
        self.assertEqual(next(matching).tag, "pr-2499")
        for _ in range(999):
            next(matching)
        queries = [args[0] for name, args in HOST.calls if name == "find_tags"]
        self.assertEqual([(q.limit, q.after) for q in queries], [(1000, None)])
        self.assertEqual(next(matching).tag, "pr-1499")
        self.assertEqual(len(list(matching)), 1499)
        queries = [args[0] for name, args in HOST.calls if name == "find_tags"]
        self.assertEqual([(q.limit, q.after) for q in queries], [(1000, None), (1000, "pr-1500"), (1000, "pr-500")])
        self.assertEqual({q.order for q in queries}, {TagOrder.NEWEST_FIRST})

    def test_tags_matching_in_name_order(self) -> None:
        HOST.tags = {f"t{i}": "sha256:a" for i in range(2000)}
        everything = [entry.tag for entry in repository.tags_matching("t\\d+", tagpolicy_guest.TagOrder.NAME)]
        self.assertEqual(everything, sorted(HOST.tags))
        # A last page that is exactly full needs one more (empty) page to know it was the last.
        self.assertEqual(sum(1 for name, _ in HOST.calls if name == "find_tags"), 3)
        self.assertEqual(list(repository.tags_matching("nothing", TagOrder.NAME)), [])

    def test_count_digest_and_tags_of(self) -> None:
        HOST.tags = {"b": "sha256:1", "a": "sha256:1", "c": "sha256:2"}
        self.assertEqual(repository.count_tags(), 3)
        self.assertEqual(repository.digest_of("c"), "sha256:2")
        self.assertIsNone(repository.digest_of("d"))
        self.assertEqual(repository.tags_of("sha256:1"), ["a", "b"])
        self.assertEqual(repository.tags_of("sha256:3"), [])

    def test_history_of_reads_stamps_as_instants(self) -> None:
        HOST.tags = {"1.0.0": "sha256:a", "1.0.1": "sha256:b", "moved": "sha256:c"}
        HOST.histories = {
            "1.0.0": TagHistory(stamp(1_800_000_000, "ci-bot", 5), stamp(1_800_000_000, "ci-bot", 5)),
            "moved": TagHistory(stamp(1_800_000_100, None), None),
            "gone": TagHistory(stamp(1, "x"), None),
        }
        history = repository.history_of("1.0.0")
        assert history is not None
        self.assertEqual(history.changed, repository.Stamp(Instant(1_800_000_000, 5), "ci-bot"))
        self.assertEqual(history.created, history.changed)
        self.assertIsInstance(history.changed.at, Instant)
        self.assertEqual(str(history.changed.at), "2027-01-15T08:00:00Z")
        moved = repository.history_of("moved")
        assert moved is not None
        self.assertIsNone(moved.created)
        self.assertIsNone(moved.changed.actor)
        self.assertIsNone(repository.history_of("1.0.1"), "not on record")
        self.assertIsNone(repository.history_of("gone"), "not a tag")


if __name__ == "__main__":
    unittest.main()
