#!/bin/sh
# packaging/build-deb.sh [OUTDIR] — build k3snode_<version>_all.deb into OUTDIR (default
# <repo>/.cache/deb) with dpkg-buildpackage (debhelper 13, dh-python, pybuild pyproject).
# The source is staged first, with packaging/debian as debian/ and the unit and tmpfiles
# from systemd/, so the repository itself has no debian/ directory at its top.
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${1:-$REPO/.cache/deb}" && cd "${1:-$REPO/.cache/deb}" && pwd)
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/pyproject.toml")
DEBVER=$(sed -n '1s/^k3snode (\([^)]*\)).*/\1/p' "$REPO/packaging/debian/changelog")
if [ "$VERSION" != "$DEBVER" ]; then
    echo "build-deb: pyproject.toml says $VERSION, packaging/debian/changelog says $DEBVER" >&2
    exit 2
fi
BUILD=$OUT/build
rm -rf "$BUILD" "$OUT"/k3snode_*.deb
SRC=$BUILD/k3snode-$VERSION
"$REPO/packaging/stage.sh" "$SRC"
cp -r "$REPO/packaging/debian" "$SRC/debian"
cp "$REPO/systemd/k3snode.service" "$SRC/debian/k3snode.service"
cp "$REPO/systemd/k3snode.tmpfiles" "$SRC/debian/k3snode.tmpfiles"
# Debian's tools with Debian's python3 (a pyenv or venv python3 first on PATH breaks pybuild).
cd "$SRC"
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$BUILD" LANG=C.UTF-8 \
    dpkg-buildpackage -us -uc -b >"$BUILD/build.log" 2>&1 || {
    tail -40 "$BUILD/build.log" >&2
    exit 1
}
mv "$BUILD/k3snode_${VERSION}_all.deb" "$OUT/"
echo "$OUT/k3snode_${VERSION}_all.deb"
