"""Every test that takes `impl` (or `Registry`/`PairRegistry`) runs against both
implementations: ids [c] and [py].

The native core is imported by name, so a broken build errors instead of
quietly testing the fallback twice.  FLOWREG_NO_EXTENSIONS=1 skips the [c]
items; FLOWREG_REQUIRE_EXTENSION=1 (set by CI) fails the run if the native
core is missing.
"""

import importlib
import os
from types import SimpleNamespace

import pytest

IMPLS = {"c": "flowreg._registry", "py": "flowreg._registry_py"}


def pytest_sessionstart(session):
    if os.environ.get("FLOWREG_REQUIRE_EXTENSION"):
        import flowreg

        if flowreg.IMPLEMENTATION != "c":
            raise pytest.UsageError(
                "FLOWREG_REQUIRE_EXTENSION is set but flowreg is using its pure-Python fallback: "
                "the native core was not built or does not import"
            )


def pytest_collection_modifyitems(config, items):
    if os.environ.get("FLOWREG_NO_EXTENSIONS"):
        skip = pytest.mark.skip(reason="FLOWREG_NO_EXTENSIONS is set")
        for item in items:
            if item.get_closest_marker("c_ext"):
                item.add_marker(skip)


@pytest.fixture(scope="session", params=[pytest.param("c", marks=pytest.mark.c_ext), "py"])
def impl(request):
    """One implementation: a namespace with name, FlowRegistry and PairFlowRegistry."""
    if request.param == "c" and os.environ.get("FLOWREG_NO_EXTENSIONS"):
        pytest.skip("FLOWREG_NO_EXTENSIONS is set")
    module = importlib.import_module(IMPLS[request.param])
    return SimpleNamespace(
        name=request.param, FlowRegistry=module.FlowRegistry, PairFlowRegistry=module.PairFlowRegistry
    )


@pytest.fixture
def Registry(impl):
    return impl.FlowRegistry


@pytest.fixture
def PairRegistry(impl):
    return impl.PairFlowRegistry


@pytest.fixture
def both():
    """Both implementations at once, for differential tests (skips where only one exists)."""
    if os.environ.get("FLOWREG_NO_EXTENSIONS"):
        pytest.skip("FLOWREG_NO_EXTENSIONS is set")
    return {name: importlib.import_module(module) for name, module in IMPLS.items()}
