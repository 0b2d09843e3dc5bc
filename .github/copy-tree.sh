#!/usr/bin/env bash
# Copy the work tree as a commit of it would hold it (tracked files plus new, unignored ones;
# outside git: everything but build products) into DEST, for the checks that build from it.
# Usage: .github/copy-tree.sh DEST   (run from the project root)
set -euo pipefail
dest=${1:?usage: copy-tree.sh DEST}
mkdir -p "$dest"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    list=$(mktemp)
    trap 'rm -f "$list"' EXIT
    git ls-files -z --cached --others --exclude-standard >"$list"  # fails here, not silently
    while IFS= read -r -d '' f; do
        if [ -f "$f" ]; then  # skips files deleted but not yet committed
            mkdir -p "$dest/$(dirname -- "$f")"
            cp -p -- "$f" "$dest/$f"
        fi
    done <"$list"
elif [ -e .git ]; then
    echo "copy-tree.sh: git cannot read this checkout (git status says why)" >&2
    exit 1
else
    cp -a . "$dest"
    rm -rf "$dest"/{build,dist,*.egg-info} "$dest"/flowreg/*.{c,html,so,pyd}
fi
