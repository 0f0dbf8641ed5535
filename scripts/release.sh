#!/bin/sh
# scripts/release.sh OUTDIR — build the release set into OUTDIR (emptied first):
#   k3snode-<v>.tar.gz, k3snode-<v>-py3-none-any.whl   sdist and wheel (`twine check --strict`)
#   k3snode_<v>_all.deb                                 packaging/build-deb.sh
#   k3snode-<v>-1.noarch.rpm                            packaging/build-rpm.sh
#   install.sh, k3snode-uninstall.sh                    the installer and its uninstaller
#   k3snode.service                                     the unit, for the installer's virtualenv path
#   SHA256SUMS                                          sha256sum of all of the above
# Publish the files as the assets of the GitHub release v<v>: install.sh finds them under
# https://github.com/k3snode/k3snode/releases/download/v<v>/ (and …/releases/latest/download/).
# PYTHON (default: the checkout's .venv, else python3) needs `build` and `twine` (the test extra).
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 1 ] || { echo "usage: scripts/release.sh OUTDIR" >&2; exit 2; }
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
    if [ -x "$REPO/.venv/bin/python" ]; then PYTHON=$REPO/.venv/bin/python; else PYTHON=python3; fi
fi
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/pyproject.toml")
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
rm -rf "${OUT:?}"/* "$OUT"/.build
WORK=$OUT/.build
mkdir -p "$WORK"

# sdist + wheel from a staged copy (what git tracks; no .venv, .cache or build leftovers).
"$REPO/packaging/stage.sh" "$WORK/src"
"$PYTHON" -m build --sdist --wheel --outdir "$OUT" "$WORK/src" >"$WORK/build.log" 2>&1 || {
    tail -30 "$WORK/build.log" >&2
    exit 1
}
"$PYTHON" -m twine check --strict "$OUT/k3snode-$VERSION.tar.gz" "$OUT/k3snode-$VERSION-py3-none-any.whl"

"$REPO/packaging/build-deb.sh" "$WORK/deb" >/dev/null
mv "$WORK/deb/k3snode_${VERSION}_all.deb" "$OUT/"
"$REPO/packaging/build-rpm.sh" "$WORK/rpm" >/dev/null
mv "$WORK/rpm/k3snode-$VERSION-1.noarch.rpm" "$OUT/"

install -m 0755 "$REPO/install.sh" "$REPO/k3snode-uninstall.sh" "$OUT/"
install -m 0644 "$REPO/systemd/k3snode.service" "$OUT/"
rm -rf "$WORK"
cd "$OUT"
sha256sum -- * >SHA256SUMS.tmp
mv SHA256SUMS.tmp SHA256SUMS
ls -1 "$OUT"
