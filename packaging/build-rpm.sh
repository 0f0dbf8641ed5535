#!/bin/sh
# packaging/build-rpm.sh [OUTDIR] — build k3snode-<version>-1.noarch.rpm and the .src.rpm into
# OUTDIR (default <repo>/.cache/rpm) with rpmbuild from packaging/rpm/k3snode.spec.
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${1:-$REPO/.cache/rpm}" && cd "${1:-$REPO/.cache/rpm}" && pwd)
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/pyproject.toml")
SPECVER=$(sed -n 's/^Version: *//p' "$REPO/packaging/rpm/k3snode.spec")
if [ "$VERSION" != "$SPECVER" ]; then
    echo "build-rpm: pyproject.toml says $VERSION, packaging/rpm/k3snode.spec says $SPECVER" >&2
    exit 2
fi
TOP=$OUT/rpmbuild
rm -rf "$TOP" "$OUT"/*.rpm
mkdir -p "$TOP/SOURCES"
"$REPO/packaging/stage.sh" "$TOP/stage/k3snode-$VERSION"
tar -C "$TOP/stage" --owner=0 --group=0 -czf "$TOP/SOURCES/k3snode-$VERSION.tar.gz" "k3snode-$VERSION"
# On a host whose rpm database is not Fedora's (Debian here) the build requirements cannot be
# looked up: --nodeps there. The payload does not depend on it (noarch, no compilation).
NODEPS=""
rpm -q python3 >/dev/null 2>&1 || NODEPS=--nodeps
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$TOP" LANG=C.UTF-8 \
    rpmbuild $NODEPS --define "_topdir $TOP" -ba "$REPO/packaging/rpm/k3snode.spec" >"$TOP/build.log" 2>&1 || {
    tail -40 "$TOP/build.log" >&2
    exit 1
}
find "$TOP/RPMS" "$TOP/SRPMS" -name '*.rpm' -exec mv {} "$OUT/" \;
ls "$OUT"/*.rpm
