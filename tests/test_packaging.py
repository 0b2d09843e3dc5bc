"""Packaging: the wheels cibuildwheel builds, the single-sourced version, free-threading.

The cibuildwheel tests read [tool.cibuildwheel] from the pyproject.toml beside tests/ and skip
where cibuildwheel is not installed (.github/check-workflows.sh installs it) or no
pyproject.toml is there.
"""

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import flowreg

# Subprocesses and process-wide state: pytest-run-parallel runs these once.
pytestmark = pytest.mark.thread_unsafe

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"

# CPython 3.10-3.14 and free-threaded 3.14t: no cp313t (gone from cibuildwheel 4), no PyPy
# (it installs the pure wheel), no 3.15 prereleases.
PYTHONS = {"cp310", "cp311", "cp312", "cp313", "cp314", "cp314t"}
# What the runners of .github/workflows/wheels.yml build, arch by arch: ubuntu-latest and
# ubuntu-24.04-arm; windows-latest (AMD64 and x86) and windows-11-arm; macos-15-intel and
# macos-latest.  musllinux comes with cibuildwheel's defaults.
ARCHS = {
    "linux": (
        "x86_64,aarch64",
        {"manylinux_x86_64", "musllinux_x86_64", "manylinux_aarch64", "musllinux_aarch64"},
    ),
    "macos": ("x86_64,arm64", {"macosx_x86_64", "macosx_arm64"}),
    "windows": ("AMD64,x86,ARM64", {"win_amd64", "win32", "win_arm64"}),
}


def load_pyproject():
    if not PYPROJECT.exists():
        pytest.skip(f"no {PYPROJECT}")
    tomllib = pytest.importorskip("tomllib")  # 3.11+
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)


def build_identifiers(platform, *archs):
    if importlib.util.find_spec("cibuildwheel") is None:
        pytest.skip("cibuildwheel is not installed")
    if not PYPROJECT.exists():
        pytest.skip(f"no {PYPROJECT}")
    result = subprocess.run(
        [sys.executable, "-m", "cibuildwheel", "--print-build-identifiers", "--platform", platform, *archs],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("CIBW_")},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return set(result.stdout.split())


@pytest.mark.parametrize("platform", sorted(ARCHS))
def test_cibuildwheel_builds_exactly_the_intended_wheels(platform):
    archs, platform_tags = ARCHS[platform]
    expected = {f"{python}-{tag}" for python in PYTHONS for tag in platform_tags}
    assert build_identifiers(platform, "--archs", archs) == expected


@pytest.mark.parametrize("platform", sorted(ARCHS))
def test_cibuildwheel_default_archs_build_every_python(platform):
    """With the runner's own (auto) archs, as the workflow runs it: each arch gets every Python."""
    by_tag = {}
    for identifier in build_identifiers(platform):
        python, tag = identifier.split("-", 1)
        by_tag.setdefault(tag, set()).add(python)
    assert by_tag
    assert set(by_tag) <= ARCHS[platform][1]
    assert all(pythons == PYTHONS for pythons in by_tag.values()), by_tag


def test_cibuildwheel_test_requires_override_tracks_the_test_extra():
    """cp310-win_arm64 installs the test extra minus numpy (no wheel there): keep them in step."""
    pyproject = load_pyproject()
    extra = pyproject["project"]["optional-dependencies"]["test"]
    (override,) = [
        o for o in pyproject["tool"]["cibuildwheel"]["overrides"] if o["select"] == "cp310-win_arm64"
    ]
    assert override["test-requires"] == [r for r in extra if not r.startswith("numpy")]


def test_version_is_single_sourced():
    try:
        metadata_version = importlib.metadata.version("flowreg")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("flowreg is not installed (built in place?)")
    assert flowreg.__version__ == metadata_version


def test_version_comes_from_flowreg_version():
    pyproject = load_pyproject()
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "flowreg._version.__version__"}


@pytest.mark.skipif(not sysconfig.get_config_var("Py_GIL_DISABLED"), reason="needs a free-threaded build")
@pytest.mark.skipif("c" not in flowreg.implementations(), reason="only an extension can enable the GIL")
def test_import_keeps_the_gil_disabled(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON_GIL", "FLOWREG_NO_EXTENSIONS")}
    code = "import sys, flowreg; print(sys._is_gil_enabled(), flowreg.IMPLEMENTATION, flowreg.__file__)"
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        # Not the checkout: there `python -c` would import the source tree, which has no native core.
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"False c {flowreg.__file__}"
