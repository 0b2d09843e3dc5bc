"""Every test that takes `impl` (or `Registry`/`PairRegistry`) runs against both
implementations: ids [c] and [py].

The native core is imported by name, so the fallback is never tested twice.
The [c] items are skipped, with the reason, where it is not built (no compiler:
pip installed the pure-Python package) or FLOWREG_NO_EXTENSIONS=1 is set;
FLOWREG_REQUIRE_EXTENSION=1 (set by CI) fails the run instead if the native core
is missing, and a native core that is built but raises on import is an error.
"""

import importlib
import importlib.util
import os
import time
import warnings
from types import SimpleNamespace

import pytest

IMPLS = {"c": "flowreg._registry", "py": "flowreg._registry_py"}


def _no_native_core() -> str | None:
    """Why the [c] items are skipped, or None."""
    if os.environ.get("FLOWREG_NO_EXTENSIONS"):
        return "FLOWREG_NO_EXTENSIONS is set"
    if importlib.util.find_spec(IMPLS["c"]) is None:
        return "the native core is not built here (no compiler: pip installed the pure-Python package)"
    return None


NO_NATIVE_CORE = _no_native_core()


def pytest_report_header(config):
    return f"flowreg: [c] items skipped: {NO_NATIVE_CORE}" if NO_NATIVE_CORE else None


def pytest_sessionstart(session):
    if os.environ.get("FLOWREG_REQUIRE_EXTENSION"):
        import flowreg

        if flowreg.IMPLEMENTATION != "c":
            raise pytest.UsageError(
                "FLOWREG_REQUIRE_EXTENSION is set but flowreg is using its pure-Python fallback: "
                "the native core was not built or does not import"
            )


def pytest_collection_modifyitems(config, items):
    if NO_NATIVE_CORE:
        skip = pytest.mark.skip(reason=NO_NATIVE_CORE)
        for item in items:
            if item.get_closest_marker("c_ext"):
                item.add_marker(skip)


@pytest.fixture(scope="session", params=[pytest.param("c", marks=pytest.mark.c_ext), "py"])
def impl(request):
    """One implementation: a namespace with name, FlowRegistry and PairFlowRegistry."""
    if request.param == "c" and NO_NATIVE_CORE:
        pytest.skip(NO_NATIVE_CORE)
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
    if NO_NATIVE_CORE:
        pytest.skip(NO_NATIVE_CORE)
    return {name: importlib.import_module(module) for name, module in IMPLS.items()}


def _in_a_fork(child, stuck_means, timeout=20):
    """Fork; the child exits 0 if child() is true.  Fails if it does not, or is stuck."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "use of fork() may lead to deadlocks"
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if child() else 3
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail(f"the child of the fork did not finish within {timeout} s: {stuck_means}")
    assert os.waitstatus_to_exitcode(done[1]) == 0


@pytest.fixture
def in_a_fork():
    """_in_a_fork(child, stuck_means): what a fork child can still do (needs os.fork)."""
    return _in_a_fork
