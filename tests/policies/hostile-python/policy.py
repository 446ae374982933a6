"""Misbehaves on purpose: a push of the tag `loop` never ends, one of `bomb` allocates until
the host stops it, any other push is allowed. Written against the generated bindings, so that
the test does not depend on the SDK."""

from wit_world import exports
from wit_world.imports import types


class Policy(exports.Policy):
    def metadata(self) -> types.PolicyMetadata:
        return types.PolicyMetadata(
            "hostile-python", "0.1.0", "Loops or eats memory on purpose, for the sandbox tests", "{}"
        )

    def configure(self, settings: str) -> None:
        pass

    def evaluate(self, request: types.Request) -> None:
        operation = request.operation
        if not isinstance(operation, types.Operation_Push):
            return
        for change in operation.value.tags:
            if change.tag == "loop":
                n = 0
                while True:
                    n += 1
            if change.tag == "bomb":
                hoard = []
                while True:
                    hoard.append(bytearray(16 << 20))
