#!/usr/bin/env bash
# Copy the work tree as a commit of it would hold it (tracked files plus new, unignored ones;
# outside git: everything but build products) into DEST, for the checks that build from it.
# Usage: .github/copy-tree.sh DEST   (run from the project root)
set -euo pipefail
dest=$1
mkdir -p "$dest"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    while IFS= read -r -d '' f; do
        if [ -f "$f" ]; then  # skips files deleted but not yet committed
            mkdir -p "$dest/$(dirname "$f")"
            cp -p "$f" "$dest/$f"
        fi
    done < <(git ls-files -z --cached --others --exclude-standard)
else
    cp -a . "$dest"
    rm -rf "$dest"/{build,dist,*.egg-info} "$dest"/flowreg/*.{c,html,so,pyd}
fi
