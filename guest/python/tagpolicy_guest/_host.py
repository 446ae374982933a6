"""The one module of the SDK that touches the bindings componentize-py generates.

Everything else in the SDK reaches the host through the names below, so that the SDK can run
outside a component: the unit tests put a fake module in ``sys.modules`` under this module's
name (``tagpolicy_guest._host``) before importing ``tagpolicy_guest``.
"""

from componentize_py_types import Err
from wit_world.exports import Policy as Export
from wit_world.imports import context, image, output, patterns, repository, types, verdict

__all__ = ["Err", "Export", "context", "image", "output", "patterns", "repository", "types", "verdict"]
