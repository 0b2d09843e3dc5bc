#!/usr/bin/env bash
# Sanitizer check: the native core built with AddressSanitizer and UndefinedBehaviorSanitizer
# (gcc, Linux), and the whole test suite run against it.
#   - PYTHONMALLOC=malloc sends PyMem_* (the core's slot and key arrays) to malloc, where ASan
#     sees every out-of-bounds access and every use after free;
#   - -fno-sanitize-recover: the first undefined behaviour (a NULL passed to memcpy, a signed
#     overflow, a misaligned load...) aborts the run with its report;
#   - leak detection is off: the interpreter keeps memory at exit by design (the core's own
#     leaks are tests/test_memory.py's: tracemalloc and refcounts over many cycles);
#   - pytest captures only Python-level output (--capture=sys), so a report reaches the log.
# Builds a copy of the work tree (tracked and new, unignored files) in its own venv, with the
# debug flags (FLOWREG_DEBUG_BUILD=1: -O0 -g3, asserts on).
# About 5 minutes here (the suite is 2-3x slower under ASan).
# Usage: .github/sanitizer-check.sh   (PYTHON=python3.12 to pick the Python)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
export PIP_CONSTRAINT="$PWD/.github/constraints.txt"  # the Cython the wheels are built with
work=$(mktemp -d "${TMPDIR:-/tmp}/flowreg-sanitizers.XXXXXX")
trap 'rm -rf "$work"' EXIT

runtime=()
for lib in libasan.so libubsan.so; do
    path=$(gcc -print-file-name="$lib")
    if [ ! -e "$path" ]; then
        echo "gcc has no $lib here: install its sanitizer runtimes" >&2
        exit 1
    fi
    runtime+=("$path")
done

"$PYTHON" -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
python -m pip install -q --upgrade pip
# The build requirements go into the venv so that pip builds with the flags below
# (--no-build-isolation), then the project with its test extra.
python -m pip install -q "setuptools>=77" "Cython>=3.1,<4"
# -fno-wrapv: Python's own flags (-fwrapv) would define signed overflow, and UBSan skip it.
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-wrapv -fno-omit-frame-pointer"
# From a copy of the tree as a commit would hold it: setuptools would reuse the unsanitized
# objects of an earlier build in build/, and the copy has no in-place build.
bash .github/copy-tree.sh "$work/src"
cd "$work/src"
# CC=gcc: the compiler whose sanitizer runtimes are preloaded below.  FLOWREG_REQUIRE_EXTENSION:
# a failed compile fails here, with the compiler's error, rather than at the ldd check.
CC=gcc CFLAGS="$sanitize" LDFLAGS="$sanitize" FLOWREG_DEBUG_BUILD=1 FLOWREG_REQUIRE_EXTENSION=1 \
    python -m pip install -q --no-build-isolation --no-cache-dir ".[test]"

# Found without importing it: loaded before the ASan runtime, it would abort.
platlib=$(python -I -c 'import sysconfig; print(sysconfig.get_path("platlib"))')
shopt -s nullglob
cores=("$platlib"/flowreg/_registry*.so)
core=${cores[0]:-}
if [ -z "$core" ] || ! ldd "$core" | grep libasan >/dev/null; then  # no -q: ldd must not get SIGPIPE
    echo "the native core (${core:-not built}) was not built with AddressSanitizer" >&2
    exit 1
fi
echo "== the suite against $core (ASan + UBSan)"
preload=$(IFS=:; echo "${runtime[*]}")
LD_PRELOAD="$preload" PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=0 \
    UBSAN_OPTIONS=print_stacktrace=1 FLOWREG_REQUIRE_EXTENSION=1 \
    pytest -q -p no:cacheprovider --capture=sys
echo "== sanitizers OK"
