"""Findings, requests, patterns and the export, against the fake host."""

from __future__ import annotations

import unittest
from dataclasses import dataclass

from fakehost import HOST, Actor, Err, Manifest, KeyValue, Referrer, delete, delete_manifest, push
import tagpolicy_guest
from tagpolicy_guest import ChangeKind, Findings, Pattern, Patterns, Request, SettingsError, image, repository
from tagpolicy_guest.text import code_list, short_digest


class FindingsTest(unittest.TestCase):
    def test_a_denial_wins_and_drops_warnings(self) -> None:
        findings = Findings()
        findings.warn("a", "careful")
        self.assertEqual(findings.decision().outcome, "warn")
        findings.deny("b", "no")
        findings.deny_request("never")
        decision = findings.decision()
        self.assertTrue(findings.is_denied)
        self.assertEqual(decision.outcome, "deny")
        self.assertEqual([(f.tag, f.reason) for f in decision.findings], [("b", "no"), (None, "never")])
        self.assertEqual(Findings().decision().outcome, "allow")

    def test_report_goes_through_verdict_in_order(self) -> None:
        HOST.reset()
        findings = Findings()
        findings.warn_request("w")
        findings.warn("t", "x")
        findings.decision().report()
        self.assertEqual(HOST.verdicts, [("warn", None, "w"), ("warn", "t", "x")])
        HOST.reset()
        tagpolicy_guest.Decision("deny").report()
        self.assertEqual(HOST.verdicts, [("deny", None, "denied without a reason")])


class RequestTest(unittest.TestCase):
    def setUp(self) -> None:
        HOST.reset()
        HOST.tags = {"1.0": "sha256:a", "latest": "sha256:a", "dev": "sha256:b"}

    def test_changes_of_a_push(self) -> None:
        request = Request(push("sha256:a", "new", "dev", "latest", at=86_400))
        changes = request.changes()
        self.assertEqual([(c.tag, c.kind, c.from_, c.to) for c in changes], [
            ("new", ChangeKind.CREATE, None, "sha256:a"),
            ("dev", ChangeKind.MOVE, "sha256:b", "sha256:a"),
            ("latest", ChangeKind.IDENTICAL, "sha256:a", "sha256:a"),
        ])
        self.assertEqual([c.verb for c in changes], ["create", "move", "re-push"])
        self.assertTrue(changes[2].is_identical)
        self.assertEqual(request.push().digest, "sha256:a")
        self.assertEqual(str(request.time), "1970-01-02T00:00:00Z")

    def test_changes_of_deletions(self) -> None:
        request = Request(delete("dev", "nope"))
        self.assertIsNone(request.push())
        self.assertEqual([(c.tag, c.kind, c.from_, c.to) for c in request.changes()],
                         [("dev", ChangeKind.DELETE, "sha256:b", None), ("nope", ChangeKind.DELETE, None, None)])
        self.assertEqual([(c.tag, c.from_) for c in Request(delete_manifest("sha256:a")).changes()],
                         [("1.0", "sha256:a"), ("latest", "sha256:a")])

    def test_context_and_repository_are_host_calls(self) -> None:
        HOST.actor = Actor("alice", ["dev"])
        request = Request(push("sha256:c", "x"))
        self.assertEqual(HOST.calls, [], "reading the request calls nothing")
        self.assertEqual(request.actor().id, "alice")
        self.assertEqual(request.repository(), "team/app")
        self.assertEqual(repository.tags_of("sha256:a"), ["1.0", "latest"])
        self.assertEqual(repository.digest_of("dev"), "sha256:b")
        self.assertEqual(repository.count_tags(), 3)

    def test_image_helpers(self) -> None:
        HOST.manifests["sha256:a"] = Manifest("m", annotations=[KeyValue("k", "v")])
        HOST.labels["sha256:a"] = {"maintainer": "ops"}
        HOST.referrers["sha256:a"] = [Referrer("sha256:s", "m", "sig")]
        self.assertEqual(image.annotation(image.manifest_of("sha256:a"), "k"), "v")
        self.assertIsNone(image.manifest_of("sha256:zz"))
        self.assertEqual(image.label("sha256:a", "maintainer"), "ops")
        self.assertTrue(image.has_referrer("sha256:a", "sig"))
        self.assertFalse(image.has_referrer("sha256:a", "sbom"))


class PatternTest(unittest.TestCase):
    def setUp(self) -> None:
        HOST.reset()

    def test_patterns_are_checked_and_matched_by_the_host(self) -> None:
        pattern = Pattern("v\\d+")
        self.assertTrue(pattern.matches("v12"))
        self.assertFalse(pattern.matches("xv12"))
        self.assertEqual(HOST.calls[0], ("full_match", ("v\\d+", "")), "checked on creation")
        with self.assertRaisesRegex(ValueError, r"^`\(` is not a valid regex: "):
            Pattern("(")

    def test_a_set_is_one_host_call_per_text(self) -> None:
        patterns = Patterns([Pattern("latest"), Pattern("\\d+"), Pattern(".*")])
        digits = Pattern("\\d+")
        HOST.calls.clear()
        self.assertEqual(patterns.first_match("12"), digits)
        self.assertTrue(patterns.any_match("x"))
        self.assertEqual([name for name, _ in HOST.calls], ["first_in_set", "first_in_set"])
        empty = Patterns()
        self.assertFalse(empty)
        self.assertIsNone(empty.first_match("x"))
        self.assertEqual([str(p) for p in patterns], ["latest", "\\d+", ".*"])

    def test_a_pattern_the_host_refuses_later_stops_the_evaluation(self) -> None:
        pattern = Pattern("x")
        pattern.text = "("
        with self.assertRaisesRegex(RuntimeError, "stopped working"):
            pattern.matches("x")


@dataclass
class ProtectedSettings:
    protected: Pattern


class ReleaseBotOnly(tagpolicy_guest.Policy):
    NAME = "release-bot-only"
    VERSION = "0.1.0"
    DESCRIPTION = "Only release-bot changes protected tags"
    SETTINGS_EXAMPLE = '{"protected": "v\\\\d+.*"}'
    SETTINGS = ProtectedSettings
    settings: ProtectedSettings

    @classmethod
    def configure(cls, settings: ProtectedSettings) -> ReleaseBotOnly:
        if settings.protected.text == "":
            raise SettingsError.at("protected", "empty")
        return cls(settings)

    def evaluate(self, request: Request, findings: Findings) -> None:
        for change in request.changes():
            if change.is_identical or not self.settings.protected.matches(change.tag):
                continue
            if request.actor().id != "release-bot":
                findings.deny(change.tag, f"tag `{change.tag}` is protected: only `release-bot` may {change.verb} it")


class ExportTest(unittest.TestCase):
    def setUp(self) -> None:
        HOST.reset()
        tagpolicy_guest.policy._configured = None
        self.export = tagpolicy_guest.export(ReleaseBotOnly)()

    def test_metadata(self) -> None:
        meta = self.export.metadata()
        self.assertEqual((meta.name, meta.version, meta.settings_example),
                         ("release-bot-only", "0.1.0", '{"protected": "v\\\\d+.*"}'))

    def test_evaluate_before_configure_denies(self) -> None:
        self.export.evaluate(push("sha256:a", "v1"))
        self.assertEqual(HOST.verdicts, [("deny", None, "the policy was evaluated before it was configured")])

    def test_configure_errors_are_wit_errors(self) -> None:
        with self.assertRaises(Err) as caught:
            self.export.configure('{"protected": ""}')
        self.assertEqual(caught.exception.value, "settings.protected: empty")
        with self.assertRaises(Err) as caught:
            self.export.configure('{"protectd": "x"}')
        self.assertEqual(caught.exception.value, "settings.protectd: unknown field `protectd`, expected `protected`")

    def test_configure_then_evaluate(self) -> None:
        self.export.configure('{"protected": "v\\\\d+.*"}')
        HOST.actor = Actor("alice", [])
        self.export.evaluate(push("sha256:a", "v1", "dev"))
        self.assertEqual(HOST.verdicts, [("deny", "v1", "tag `v1` is protected: only `release-bot` may create it")])
        HOST.verdicts.clear()
        HOST.actor = Actor("release-bot", [])
        self.export.evaluate(push("sha256:a", "v1"))
        self.assertEqual(HOST.verdicts, [])

    def test_a_failing_policy_fails_and_says_where(self) -> None:
        class Broken(ReleaseBotOnly):
            @classmethod
            def configure(cls, settings: ProtectedSettings) -> ReleaseBotOnly:
                if settings.protected.text == "boom":
                    raise KeyError("boom")
                return cls(settings)

            def evaluate(self, request: Request, findings: Findings) -> None:
                findings.warn_request("dropped")
                1 / 0

        export = tagpolicy_guest.export(Broken)()
        with self.assertRaises(Err) as caught:
            export.configure('{"protected": "boom"}')
        self.assertRegex(caught.exception.value,
                         r"^policy `release-bot-only` failed to read its settings: KeyError: 'boom' \(test_sdk.py, line \d+\)$")
        export.configure('{"protected": "x"}')
        export.evaluate(push("sha256:a", "v1"))
        # A failure, not a denial: the host tells the two apart (and refuses the request).
        self.assertEqual(len(HOST.verdicts), 1)
        kind, tag, reason = HOST.verdicts[0]
        self.assertEqual((kind, tag), ("fail", None))
        self.assertRegex(reason, r"^ZeroDivisionError: division by zero \(test_sdk.py, line \d+\)$")

    def test_print_goes_to_the_host(self) -> None:
        from tagpolicy_guest.policy import _Output

        out = _Output()
        print("checked", 3, "tags", file=out)  # type: ignore[arg-type]
        self.assertEqual("".join(HOST.printed), "checked 3 tags\n")

    def test_export_checks_the_description(self) -> None:
        class Nameless(tagpolicy_guest.Policy):
            VERSION = DESCRIPTION = "x"

        with self.assertRaisesRegex(TypeError, "Nameless.NAME"):
            tagpolicy_guest.export(Nameless)


class TextTest(unittest.TestCase):
    def test_wording_helpers(self) -> None:
        self.assertEqual(short_digest("sha256:0123456789abcdef"), "sha256:0123456789ab")
        self.assertEqual(short_digest("sha256:01"), "sha256:01")
        self.assertEqual(short_digest("sha256:0123456789aé"), "sha256:0123456789aé", "no cut inside a character")
        self.assertEqual(code_list(["a", "b"]), "`a`, `b`")


if __name__ == "__main__":
    unittest.main()
