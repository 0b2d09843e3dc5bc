"""Which implementation `import flowreg` picks, and how to force the fallback."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import flowreg

# These start a fresh interpreter and look only at its output: nothing is shared that threads
# could race on, and running them 4 times at once costs interpreter start-ups, not coverage.
SUBPROCESS = pytest.mark.thread_unsafe(reason="a subprocess: nothing to gain from threads")
# Without an importable native core these would see the fallback whatever they did.
NEEDS_CORE = pytest.mark.skipif("c" not in flowreg.implementations(), reason="no native core here")


def run(code, cwd, **env):
    """Run code in a fresh interpreter and return what it printed; it must print nothing to stderr.

    cwd must not hold a flowreg/: `python -c` puts the cwd first on sys.path, so from a checkout
    it would import the source tree (no native core) instead of the package under test, which
    the last line checks.
    """
    check = "\nimport flowreg as _flowreg\nprint(_flowreg.__file__)\n"
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code) + check],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    *out, imported = result.stdout.splitlines()
    assert imported == flowreg.__file__, "the subprocess imported another flowreg"
    return "\n".join(out).strip()


def test_implementation_is_consistent():
    assert flowreg.IMPLEMENTATION in ("c", "py")
    impls = flowreg.implementations()
    assert "py" in impls
    chosen = impls[flowreg.IMPLEMENTATION]
    if not os.environ.get("FLOWREG_NO_EXTENSIONS"):
        assert chosen.FlowRegistry is flowreg.FlowRegistry
        assert chosen.PairFlowRegistry is flowreg.PairFlowRegistry
        if "c" in impls:  # the native core imports: it is the one used, not the fallback
            from flowreg import _registry

            assert flowreg.IMPLEMENTATION == "c"
            assert flowreg.FlowRegistry is _registry.FlowRegistry
            assert flowreg.PairFlowRegistry is _registry.PairFlowRegistry


@SUBPROCESS
@NEEDS_CORE
def test_no_extensions_forces_the_fallback(tmp_path):
    out = run(
        "import flowreg; print(flowreg.IMPLEMENTATION, flowreg.FlowRegistry.__module__)",
        tmp_path,
        FLOWREG_NO_EXTENSIONS="1",
    )
    assert out == "py flowreg._registry_py"


@SUBPROCESS
@NEEDS_CORE
def test_a_missing_extension_falls_back_silently(tmp_path):
    out = run(
        """
        import sys, warnings
        warnings.simplefilter("error")
        sys.modules["flowreg._registry"] = None  # makes `from . import _registry` raise ImportError
        import flowreg
        print(flowreg.IMPLEMENTATION, sorted(flowreg.implementations()))
        """,
        tmp_path,
        FLOWREG_NO_EXTENSIONS="",
    )
    assert out == "py ['py']"


@SUBPROCESS
@NEEDS_CORE
def test_a_broken_extension_falls_back_silently(tmp_path):
    """A native core whose import raises something else than ImportError: a broken build."""
    out = run(
        """
        import importlib.abc, importlib.util, sys, warnings
        warnings.simplefilter("error")

        class BrokenCore(importlib.abc.MetaPathFinder, importlib.abc.Loader):
            def find_spec(self, name, path=None, target=None):
                if name == "flowreg._registry":
                    return importlib.util.spec_from_loader(name, self)
                return None

            def create_module(self, spec):
                return None

            def exec_module(self, module):
                raise RuntimeError("the module's init failed")

        sys.meta_path.insert(0, BrokenCore())
        import flowreg
        print(flowreg.IMPLEMENTATION, sorted(flowreg.implementations()))
        from flowreg.cli import build_info  # flowreg info says why, rather than crash

        info = build_info()
        print(info["implementation"], info["native_import_error"])
        """,
        tmp_path,
        FLOWREG_NO_EXTENSIONS="",
    )
    assert out == "py ['py']\npy RuntimeError: the module's init failed"


@SUBPROCESS
def test_the_suite_fails_loudly_when_the_extension_is_required_but_missing(tmp_path):
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    conftest = os.path.join(os.path.dirname(__file__), "conftest.py")
    (tmp_path / "conftest.py").write_text(Path(conftest).read_text())
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['flowreg._registry'] = None; import pytest; "
            f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', {str(tmp_path)!r}]))",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "FLOWREG_REQUIRE_EXTENSION": "1", "FLOWREG_NO_EXTENSIONS": ""},
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "FLOWREG_REQUIRE_EXTENSION" in result.stdout + result.stderr


@SUBPROCESS
def test_core_import_needs_no_third_party_module(tmp_path):
    out = run(
        """
        import sys
        before = set(sys.modules)
        import flowreg
        new = {m.split(".")[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names)
        third_party = {m for m in new if not m.startswith(("_cython_", "cython_runtime"))}  # Cython's own
        print(flowreg.IMPLEMENTATION, sorted(third_party))
        """,
        tmp_path,
    )
    assert out == f"{flowreg.IMPLEMENTATION} ['flowreg']"  # the implementation in use here
