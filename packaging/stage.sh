#!/bin/sh
# packaging/stage.sh DEST — copy the source tree (what git tracks plus new, not ignored files;
# never .cache, build, .venv or .git) to DEST, which must not exist. Used by the package builds.
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
DEST=$1
mkdir -p "$DEST"
cd "$REPO"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard \
        | xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh \
        | tar --null -T - -cf - | tar -C "$DEST" -xf -
else
    tar --exclude=./.cache --exclude=./build --exclude=./.git --exclude='./.venv*' --exclude='*.egg-info' \
        --exclude=__pycache__ -cf - . | tar -C "$DEST" -xf -
fi
