#!/bin/bash
# Build (once) a Debian rootfs tarball for the systemd-nspawn tests: systemd as PID 1, Debian's
# python3 with the libraries k3snode imports, iproute2. Cached under <repo>/.cache/, keyed by the
# package list; prints the tarball's path. Needs root, mmdebstrap and zstd (tests/apt-packages.txt).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PKGS=systemd,systemd-sysv,dbus,python3,python3-pyroute2,python3-yaml,python3-prometheus-client,python3-cryptography,python3-psutil,iproute2
KEY=$(printf '%s' "bookworm $PKGS" | sha256sum | cut -c1-12)
OUT=$REPO/.cache/rootfs-$KEY.tar.zst
mkdir -p "$REPO/.cache"
exec 9>"$OUT.lock"
flock 9
if [ ! -s "$OUT" ]; then
    MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    mmdebstrap --quiet --variant=apt --include="$PKGS" bookworm "$OUT.tmp.tar.zst" ${MIRROR:+"$MIRROR"} >&2
    mv "$OUT.tmp.tar.zst" "$OUT"
fi
echo "$OUT"
