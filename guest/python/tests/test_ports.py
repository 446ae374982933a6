"""The Python ports of the reference policies (policies/python/*) load and decide with the
fake host. Their decisions are checked word for word against the Rust originals by running
the scenario suites with the real host (`tagpolicy test --replace`); this only keeps them
runnable with plain CPython."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
import unittest
from pathlib import Path
from types import ModuleType

import json

from fakehost import HOST, Actor, Instant, Operation_Push, Push, Request, TagChange, TagHistory, delete, push, stamp
import tagpolicy_guest

PORTS = Path(__file__).resolve().parents[3] / "policies" / "python"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"port_{name.replace('-', '_')}", PORTS / name / "policy.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and type hints look the module up
    spec.loader.exec_module(module)
    return module


@unittest.skipUnless(PORTS.is_dir(), "the ports are not in this checkout")
class PortsTest(unittest.TestCase):
    def setUp(self) -> None:
        HOST.reset()
        tagpolicy_guest.policy._configured = None

    def test_every_port_exports_its_example_settings(self) -> None:
        for name in ("immutable-tags", "min-tags", "semver-series", "image-requirements", "change-freeze"):
            with self.subTest(name):
                export = load(name).Policy()
                meta = export.metadata()
                self.assertEqual(meta.name, name)
                self.assertEqual(meta.version, "0.1.0")
                export.configure(meta.settings_example)

    def test_every_port_holds_the_metadata_of_its_original(self) -> None:
        # componentize-py reads nothing outside a policy's folder, so each port holds a copy of
        # the Rust original's metadata.json (which the JavaScript port imports); and so does
        # its pyproject.toml, but for the settings example.
        for name in ("immutable-tags", "min-tags", "semver-series", "image-requirements", "change-freeze"):
            with self.subTest(name):
                source = json.loads((PORTS.parent / name / "metadata.json").read_text(encoding="utf-8"))
                meta = load(name).Policy().metadata()
                held = {"name": meta.name, "version": meta.version, "description": meta.description,
                        "settings_example": meta.settings_example}
                self.assertEqual(held, source)
                project = tomllib.loads((PORTS / name / "pyproject.toml").read_text(encoding="utf-8"))["project"]
                self.assertEqual({key: project[key] for key in ("name", "version", "description")},
                                 {key: source[key] for key in ("name", "version", "description")})

    def test_immutable_tags_decides(self) -> None:
        export = load("immutable-tags").Policy()
        export.configure(export.metadata().settings_example)
        HOST.tags = {"1.2.10": "sha256:" + "a" * 64, "ci-1": "sha256:" + "a" * 64}
        HOST.actor = Actor("alice", [])
        export.evaluate(push("sha256:" + "b" * 64, "1.2.10", "latest", "ci-2"))
        self.assertEqual(HOST.verdicts, [
            ("deny", "1.2.10", "tag `1.2.10` is immutable (matches immutable pattern `v?\\d+\\.\\d+\\.\\d+`): "
                               "it cannot move from sha256:aaaaaaaaaaaa to sha256:bbbbbbbbbbbb; "
                               "it has no grace period: its creation is not on record"),
            ("deny", "ci-2", "tag `ci-2` is owned by `ci-bot` (owners pattern `ci-.*`): `alice` may not create it"),
        ])


A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
#: When the tags of the grace tests were created (2027-01-15T08:00:00Z).
CREATED = 1_800_000_000
MOVE = "tag `1.0.0` is immutable (matches no pattern and the default is immutable): it cannot move from " \
       "sha256:aaaaaaaaaaaa to sha256:bbbbbbbbbbbb"


@unittest.skipUnless(PORTS.is_dir(), "the ports are not in this checkout")
class ImmutableTagsGraceTest(unittest.TestCase):
    """The grace period of immutable-tags, worded as policies/immutable-tags/src/lib.rs."""

    def setUp(self) -> None:
        HOST.reset()
        tagpolicy_guest.policy._configured = None
        HOST.tags = {"1.0.0": A}
        HOST.histories = {"1.0.0": TagHistory(stamp(CREATED, "ci-bot"), stamp(CREATED, "ci-bot"))}
        HOST.actor = Actor("ci-bot", [])

    def decide(self, settings: dict, request: Request) -> list[tuple[str, str | None, str]]:
        export = load("immutable-tags").Policy()
        export.configure(json.dumps(settings))
        HOST.verdicts.clear()
        export.evaluate(request)
        return HOST.verdicts

    def test_the_creator_may_move_it_within_the_period(self) -> None:
        grace = {"grace": {"period": "15m"}}
        self.assertEqual(self.decide(grace, push(B, "1.0.0", at=CREATED)), [])
        self.assertEqual(self.decide(grace, push(B, "1.0.0", at=CREATED + 900)), [])
        self.assertEqual(self.decide(grace, push(B, "1.0.0", at=CREATED + 901)), [
            ("deny", "1.0.0", MOVE + "; its 15m grace period after creation has passed"),
        ])
        late = Request(Operation_Push(Push(B, [TagChange("1.0.0", A)])), Instant(CREATED + 900, 1))
        self.assertEqual(self.decide(grace, late), [
            ("deny", "1.0.0", MOVE + "; its 15m grace period after creation has passed"),
        ], "to the nanosecond")
        self.assertEqual(self.decide(grace, push(B, "1.0.0", at=CREATED - 1)), [
            ("deny", "1.0.0", MOVE + "; its 15m grace period after creation has passed"),
        ], "not before it was created")

    def test_only_the_creator_unless_same_actor_is_false(self) -> None:
        HOST.actor = Actor("alice", [])
        self.assertEqual(self.decide({"grace": {"period": "1h30m", "same_actor": True}}, push(B, "1.0.0", at=CREATED)), [
            ("deny", "1.0.0", MOVE + "; only `ci-bot`, who created it, may move it in its 1h30m grace period"),
        ])
        HOST.actor = Actor(None, [])
        self.assertEqual(self.decide({"grace": {"period": "15m"}}, push(B, "1.0.0", at=CREATED)), [
            ("deny", "1.0.0", MOVE + "; only `ci-bot`, who created it, may move it in its 15m grace period"),
        ])
        self.assertEqual(self.decide({"grace": {"period": "15m", "same_actor": False}}, push(B, "1.0.0", at=CREATED)), [])

    def test_an_anonymous_creation(self) -> None:
        HOST.histories["1.0.0"] = TagHistory(stamp(CREATED, None), stamp(CREATED, None))
        HOST.actor = Actor(None, [])
        self.assertEqual(self.decide({"grace": {"period": "15m"}}, push(B, "1.0.0", at=CREATED)), [
            ("deny", "1.0.0", MOVE + "; it was created anonymously, so nobody may move it in its 15m grace period"),
        ])
        self.assertEqual(self.decide({"grace": {"period": "15m", "same_actor": False}}, push(B, "1.0.0", at=CREATED)), [])

    def test_the_creation_counts_not_the_last_change(self) -> None:
        HOST.histories["1.0.0"] = TagHistory(stamp(CREATED, "ci-bot"), stamp(CREATED - 3600, "ci-bot"))
        self.assertEqual(self.decide({"grace": {"period": "15m"}}, push(B, "1.0.0", at=CREATED)), [
            ("deny", "1.0.0", MOVE + "; its 15m grace period after creation has passed"),
        ])
        HOST.histories["1.0.0"] = TagHistory(stamp(CREATED, "ci-bot"), None)
        self.assertEqual(self.decide({"grace": {"period": "15m"}}, push(B, "1.0.0", at=CREATED)), [
            ("deny", "1.0.0", MOVE + "; it has no grace period: its creation is not on record"),
        ])
        del HOST.histories["1.0.0"]
        self.assertEqual(self.decide({"grace": {"period": "15m"}}, push(B, "1.0.0", at=CREATED)), [
            ("deny", "1.0.0", MOVE + "; it has no grace period: its creation is not on record"),
        ])

    def test_no_grace_without_the_setting_nor_for_deletions(self) -> None:
        self.assertEqual(self.decide({}, push(B, "1.0.0", at=CREATED)), [("deny", "1.0.0", MOVE)])
        self.assertEqual(self.decide({"grace": None}, push(B, "1.0.0", at=CREATED)), [("deny", "1.0.0", MOVE)])
        self.assertEqual(self.decide({"grace": {"period": "15m"}}, delete("1.0.0", at=CREATED)), [
            ("deny", "1.0.0", "tag `1.0.0` is immutable (matches no pattern and the default is immutable): "
                              "it points at sha256:aaaaaaaaaaaa and cannot be deleted"),
        ])
        self.assertEqual(HOST.calls.count(("history_of", ("1.0.0",))), 0, "no history is asked for")

    def test_grace_does_not_lift_owners(self) -> None:
        settings = {"grace": {"period": "15m"}, "owners": [{"pattern": "1\\..*", "actors": ["release-bot"]}]}
        self.assertEqual(self.decide(settings, push(B, "1.0.0", at=CREATED)), [
            ("deny", "1.0.0", "tag `1.0.0` is owned by `release-bot` (owners pattern `1\\..*`): `ci-bot` may not move it"),
        ])

    def test_grace_settings_are_checked(self) -> None:
        export = load("immutable-tags").Policy()
        for settings, error in [
            ({"grace": {"period": "15"}}, "settings.grace.period: `15` is not a period such as `90s`, `15m`, `1h30m` or `7d`"),
            ({"grace": {"period": "400d"}}, "settings.grace.period: `400d` is longer than 366 days"),
            ({"grace": {}}, "settings.grace: missing field `period`"),
            ({"grace": {"period": "1m", "same": True}},
             "settings.grace.same: unknown field `same`, expected `period` or `same_actor`"),
            ({"grace": "15m"}, 'settings.grace: invalid type: string "15m", expected struct Grace'),
        ]:
            with self.subTest(settings):
                with self.assertRaises(Exception) as caught:
                    export.configure(json.dumps(settings))
                self.assertEqual(getattr(caught.exception, "value", None), error)


@unittest.skipUnless(PORTS.is_dir(), "the ports are not in this checkout")
class SemverSeriesTest(unittest.TestCase):
    def setUp(self) -> None:
        HOST.reset()
        tagpolicy_guest.policy._configured = None
        self.export = load("semver-series").Policy()
        self.export.configure("{}")

    def decide(self, request: Request) -> list[tuple[str, str | None, str]]:
        HOST.verdicts.clear()
        self.export.evaluate(request)
        return HOST.verdicts

    def test_series_tags_follow_the_newest_release(self) -> None:
        HOST.tags = {"1.2.9": A, "v1.2.10": B, "1.3.0": B, "99999999999999999999.0.0": A, "1": A}
        self.assertEqual(self.decide(push(B, "1.2", "1")), [])
        self.assertEqual(self.decide(push(A, "1.2", "latest", "2")), [
            ("deny", "1.2", "tag `1.2` must point at the newest release of series 1.2 (1.2.10), "
                            "but this image carries only 1.2.9"),
            ("deny", "latest", "tag `latest` must point at the newest release of the repository (1.3.0), "
                               "but this image carries only 1.2.9"),
            ("deny", "2", "tag `2` follows series 2 which has no release yet: "
                          "push a release tag first or in the same push"),
        ])
        self.assertEqual(self.decide(push("sha256:" + "c" * 64, "1.2.11", "1.2", "1")), [
            ("deny", "1", "tag `1` must point at the newest release of series 1 (1.3.0), but this image carries only 1.2.11"),
        ], "a release pushed now counts")
        self.assertEqual(self.decide(push("sha256:" + "c" * 64, "v2.0.0", "2", "latest")), [])
        self.assertEqual(self.decide(push("sha256:" + "c" * 64, "1.1")), [
            ("deny", "1.1", "tag `1.1` follows series 1.1 which has no release yet: "
                            "push a release tag first or in the same push"),
        ])
        self.assertEqual(self.decide(push("sha256:" + "c" * 64, "1.2")), [
            ("deny", "1.2", "tag `1.2` must point at the newest release of series 1.2 (1.2.10), "
                            "but this image carries no release of it"),
        ])
        self.assertNotIn("list_tags", [name for name, _ in HOST.calls])


if __name__ == "__main__":
    unittest.main()
