"""Settings are read like the Rust SDK's serde reads them, with the same error words."""

from __future__ import annotations

import unittest
from dataclasses import dataclass, field
from typing import Literal

import fakehost  # noqa: F401  (installs the fake host first)
from tagpolicy_guest import U32, Pattern, Patterns, SettingsError, Weekday
from tagpolicy_guest.settings import parse


@dataclass
class Owner:
    actors: list[str]


@dataclass
class Example:
    min_tags: U32
    owners: list[Owner] = field(default_factory=list)
    mode: Literal["strict", "lenient"] = "strict"
    note: str | None = None
    from_: str | None = None
    labels: dict[str, Pattern] = field(default_factory=dict)
    tags: Patterns = field(default_factory=Patterns)
    days: list[Weekday] | None = None


def error(text: str) -> str:
    with unittest.TestCase().assertRaises(SettingsError) as caught:
        parse(text, Example)
    return str(caught.exception)


class SettingsTest(unittest.TestCase):
    def test_valid_settings_parse_with_defaults(self) -> None:
        parsed = parse('{"min_tags":3, "from": "x", "labels": {"b": "1", "a": "2"}, "days": ["Sat"]}', Example)
        self.assertEqual(parsed.min_tags, 3)
        self.assertEqual(parsed.owners, [])
        self.assertEqual(parsed.mode, "strict")
        self.assertIsNone(parsed.note)
        self.assertEqual(parsed.from_, "x")
        self.assertEqual(list(parsed.labels), ["a", "b"], "map keys are ordered, as in a BTreeMap")
        self.assertEqual(parsed.days, [Weekday.SATURDAY])

    def test_unknown_field_names_the_path(self) -> None:
        self.assertEqual(
            error('{"min_tags":1,"owners":[{"actors":[],"who":1}]}'),
            "settings.owners[0].who: unknown field `who`, expected `actors`",
        )
        self.assertTrue(error('{"min_tags":1,"colour":1}').startswith(
            "settings.colour: unknown field `colour`, expected one of `min_tags`, `owners`, `mode`, `note`, `from`,"
        ))

    def test_wrong_types_name_the_field(self) -> None:
        self.assertEqual(error('{"min_tags":"two"}'), 'settings.min_tags: invalid type: string "two", expected u32')
        self.assertEqual(error('{"min_tags":-1}'), "settings.min_tags: invalid value: integer `-1`, expected u32")
        self.assertEqual(error('{"min_tags":2.0}'), "settings.min_tags: invalid type: floating point `2.0`, expected u32")
        self.assertEqual(error('{"min_tags":true}'), "settings.min_tags: invalid type: boolean `true`, expected u32")
        self.assertEqual(error('{"min_tags":1,"owners":{}}'), "settings.owners: invalid type: map, expected a sequence")
        self.assertEqual(error('{"min_tags":1,"note":[]}'), "settings.note: invalid type: sequence, expected a string")
        self.assertEqual(error("[]"), "settings: invalid type: sequence, expected struct Example")

    def test_missing_and_duplicate_fields(self) -> None:
        self.assertEqual(error("{}"), "settings: missing field `min_tags`")
        self.assertEqual(error('{"min_tags":1,"owners":[{}]}'), "settings.owners[0]: missing field `actors`")
        self.assertEqual(error('{"min_tags":1,"min_tags":2}'), "settings: duplicate field `min_tags`")

    def test_variants(self) -> None:
        self.assertEqual(
            error('{"min_tags":1,"mode":"loose"}'),
            "settings.mode: unknown variant `loose`, expected `strict` or `lenient`",
        )
        self.assertEqual(error('{"min_tags":1,"mode":1}'), "settings.mode: expected value")

    def test_converted_values_report_at_their_path(self) -> None:
        self.assertTrue(error('{"min_tags":1,"labels":{"a.b":"("}}').startswith("settings.labels.a.b: `(` is not a valid regex: "))
        self.assertTrue(error('{"min_tags":1,"tags":["x","("]}').startswith("settings.tags[1]: `(` is not a valid regex"))
        self.assertEqual(
            error('{"min_tags":1,"days":["sat","caturday"]}'),
            "settings.days[1]: `caturday` is not a day of the week (mon, tue, … sun)",
        )

    def test_errors_come_in_document_order(self) -> None:
        self.assertTrue(error('{"tags":["("],"min_tags":"x"}').startswith("settings.tags[0]"))
        self.assertTrue(error('{"min_tags":"x","tags":["("]}').startswith("settings.min_tags"))

    def test_at_builds_the_prefix(self) -> None:
        self.assertEqual(str(SettingsError.at("rules", "empty")), "settings.rules: empty")
        self.assertEqual(str(SettingsError.at("", "wrong")), "settings: wrong")


if __name__ == "__main__":
    unittest.main()
