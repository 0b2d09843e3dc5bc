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


def run(code, **env):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


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
def test_no_extensions_forces_the_fallback():
    out = run(
        "import flowreg; print(flowreg.IMPLEMENTATION, flowreg.FlowRegistry.__module__)",
        FLOWREG_NO_EXTENSIONS="1",
    )
    assert out == "py flowreg._registry_py"


@SUBPROCESS
def test_a_missing_extension_falls_back_silently():
    out = run(
        """
        import sys, warnings
        warnings.simplefilter("error")
        sys.modules["flowreg._registry"] = None  # makes `from . import _registry` raise ImportError
        import flowreg
        print(flowreg.IMPLEMENTATION, sorted(flowreg.implementations()))
        """,
        FLOWREG_NO_EXTENSIONS="",
    )
    assert out == "py ['py']"


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
def test_core_import_needs_no_third_party_module():
    out = run(
        """
        import sys
        before = set(sys.modules)
        import flowreg
        new = {m.split(".")[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names)
        third_party = {m for m in new if not m.startswith(("_cython_", "cython_runtime"))}  # Cython's own
        print(sorted(third_party))
        """
    )
    assert out == "['flowreg']"
