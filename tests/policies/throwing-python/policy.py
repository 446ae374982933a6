"""Throws on purpose, for the tests of policy errors (tests/ports.rs): a push of the tag
`typo` reads an attribute that does not exist; one of `print` prints (through the host's
`output`) and is allowed, as is any other push."""

import tagpolicy_guest
from tagpolicy_guest import Findings, Request


class Throwing(tagpolicy_guest.Policy):
    NAME = "throwing-python"
    VERSION = "0.1.0"
    DESCRIPTION = "Throws on purpose, for the tests of policy errors"
    SETTINGS_EXAMPLE = "{}"

    def evaluate(self, request: Request, findings: Findings) -> None:
        for change in request.changes():
            if change.tag == "typo":
                change.digets
            if change.tag == "print":
                print(f"checking {change.tag}")


Policy = tagpolicy_guest.export(Throwing)
