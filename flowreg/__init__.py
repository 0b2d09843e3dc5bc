"""flowreg: an in-process registry of Python objects keyed by integer ids.

``FlowRegistry`` (int64 ids) and ``PairFlowRegistry`` ((int64, int64) ids)
behave like the ``dict`` they replace, plus ``create_flow``/``switch_flow``/
``delete_flow``, batch operations and counters.  They come from the native
core when it is built and importable, else from the pure-Python fallback
(same API and behaviour); ``IMPLEMENTATION`` says which.
"""

from __future__ import annotations

import functools
import os
import sys
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING

from . import _registry_py
from ._errors import FlowExists, FlowNotFound, FlowRegistryError
from ._version import __version__

__all__ = [
    "IMPLEMENTATION",
    "FlowExists",
    "FlowNotFound",
    "FlowRegistry",
    "FlowRegistryError",
    "PairFlowRegistry",
    "__version__",
    "implementations",
]

#: Set FLOWREG_NO_EXTENSIONS=1 to use (and, at build time, to build) the pure-Python package.
NO_EXTENSIONS = bool(os.environ.get("FLOWREG_NO_EXTENSIONS")) or sys.implementation.name != "cpython"


@functools.cache  # import once: a failed import is not retried on every call
def _native() -> ModuleType | None:
    try:
        from . import _registry
    # ImportError: not built (no compiler, a pure wheel).  Anything else is a broken build
    # (its module init raised): `import flowreg` must still work, on the fallback.
    except Exception:
        return None
    return _registry


if TYPE_CHECKING:
    from ._registry import FlowRegistry, PairFlowRegistry
else:
    _core = None if NO_EXTENSIONS else _native()
    if _core is None:
        FlowRegistry = _registry_py.FlowRegistry
        PairFlowRegistry = _registry_py.PairFlowRegistry
    else:
        FlowRegistry = _core.FlowRegistry
        PairFlowRegistry = _core.PairFlowRegistry

#: "c" when the native core is in use, "py" for the pure-Python fallback.
IMPLEMENTATION = "py" if FlowRegistry is _registry_py.FlowRegistry else "c"  # type: ignore[comparison-overlap]


def implementations() -> dict[str, SimpleNamespace]:
    """The implementations importable here, by name ("c", "py"), each with both classes."""
    found = {}
    native = _native()
    for name, module in (("c", native), ("py", _registry_py)):
        if module is not None:
            found[name] = SimpleNamespace(
                name=name, FlowRegistry=module.FlowRegistry, PairFlowRegistry=module.PairFlowRegistry
            )
    return found
