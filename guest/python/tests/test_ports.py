"""The Python ports of the reference policies (policies/python/*) load and decide with the
fake host. Their decisions are checked word for word against the Rust originals by running
the scenario suites with the real host (`tagpolicy test --replace`); this only keeps them
runnable with plain CPython."""

from __future__ import annotations

import importlib.util
import sys
import unittest
from pathlib import Path
from types import ModuleType

from fakehost import HOST, Actor, push
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

    def test_immutable_tags_decides(self) -> None:
        export = load("immutable-tags").Policy()
        export.configure(export.metadata().settings_example)
        HOST.tags = {"1.2.10": "sha256:" + "a" * 64, "ci-1": "sha256:" + "a" * 64}
        HOST.actor = Actor("alice", [])
        export.evaluate(push("sha256:" + "b" * 64, "1.2.10", "latest", "ci-2"))
        self.assertEqual(HOST.verdicts, [
            ("deny", "1.2.10", "tag `1.2.10` is immutable (matches immutable pattern `v?\\d+\\.\\d+\\.\\d+`): "
                               "it cannot move from sha256:aaaaaaaaaaaa to sha256:bbbbbbbbbbbb"),
            ("deny", "ci-2", "tag `ci-2` is owned by `ci-bot` (owners pattern `ci-.*`): `alice` may not create it"),
        ])


if __name__ == "__main__":
    unittest.main()
