#!/bin/sh
# k3snode-uninstall.sh — remove what k3snode's install.sh installed, as recorded in its manifest
# (/usr/local/lib/k3snode/install.manifest), and nothing else:
#   - stops and disables k3snode.service;
#   - the package it installed (dpkg --purge / dnf remove), or the virtualenv /opt/k3snode with
#     /usr/local/bin/k3snode and its unit; with them k3snode's state (/var/lib/k3snode: the stored
#     token and Tailscale key, the record of managed keys), as the packages' purge does;
#   - the settings it saved (/etc/k3snode/k3snode.env), the manifest and this script.
# It keeps a settings file (/etc/k3snode/config.toml) that was there before install.sh ran, a
# package that was installed before, token files of your own, and K3s: K3s and its files,
# including the keys k3snode wrote into /etc/rancher/k3s/config.yaml, are removed by
# k3s-uninstall.sh (or k3s-agent-uninstall.sh).
set -eu

MANIFEST=/usr/local/lib/k3snode/install.manifest
ETC=/etc/k3snode
SETTINGS=$ETC/config.toml
STATE=/var/lib/k3snode
VENV=/opt/k3snode

info() { echo "[INFO]  $*"; }
fatal() {
    echo "[ERROR]  $*" >&2
    exit "${2:-1}"
}

[ $# -eq 0 ] || fatal "k3snode-uninstall.sh takes no arguments (got '$1')" 2
[ "$(id -u)" -eq 0 ] || fatal "must run as root" 2
[ -f "$MANIFEST" ] || fatal "$MANIFEST is missing: k3snode was not installed here by install.sh"

METHOD=$(sed -n 's/^method=//p' "$MANIFEST" | tail -n 1)
PACKAGE=$(sed -n 's/^package=//p' "$MANIFEST" | tail -n 1)
CREATED=" $(sed -n 's/^created=//p' "$MANIFEST" | tr '\n' ' ') "
created() {
    case $CREATED in *" $1 "*) return 0 ;; esac
    return 1
}
remove() {  # remove PATH: when install.sh created it
    if created "$1" && { [ -e "$1" ] || [ -L "$1" ]; }; then
        rm -rf "$1"
        info "removed $1"
    fi
}

if command -v systemctl >/dev/null 2>&1 && systemctl cat k3snode.service >/dev/null 2>&1; then
    if [ -d /run/systemd/system ]; then systemctl stop k3snode.service || true; fi
    systemctl disable --quiet k3snode.service || true
fi

# A settings file that was there before install.sh ran stays, whatever the package does with it.
keep=
if [ -f "$SETTINGS" ] && ! created "$SETTINGS"; then
    keep=$(mktemp)
    cp -p "$SETTINGS" "$keep"
fi

case $METHOD in
    deb)
        if [ "$PACKAGE" = installed ] && dpkg-query -W k3snode >/dev/null 2>&1; then
            DEBIAN_FRONTEND=noninteractive dpkg --purge k3snode >/dev/null
            info "purged the k3snode package"
        fi
        ;;
    rpm)
        if [ "$PACKAGE" = installed ] && rpm -q k3snode >/dev/null 2>&1; then
            dnf remove -y k3snode >/dev/null
            rm -f "$SETTINGS.rpmsave"
            info "removed the k3snode package"
        fi
        ;;
    venv)
        remove /usr/local/bin/k3snode
        remove /etc/systemd/system/k3snode.service
        remove "$VENV"
        if created "$STATE"; then
            rm -rf "$STATE" /run/k3snode
            info "removed $STATE"
        fi
        ;;
    *) fatal "$MANIFEST: unknown method '$METHOD'" ;;
esac

remove "$ETC/k3snode.env"
remove "$STATE/token"
remove "$STATE/tailscale.key"
if [ -n "$keep" ]; then
    mkdir -p "$ETC"
    mv -f "$keep" "$SETTINGS"
    info "kept $SETTINGS (it was there before install.sh)"
else
    remove "$SETTINGS"
fi
for d in "$STATE" "$ETC"; do
    if created "$d" && [ -d "$d" ] && rmdir "$d" 2>/dev/null; then info "removed $d"; fi
done
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
rm -f "$MANIFEST"
rmdir /usr/local/lib/k3snode 2>/dev/null || true
remove /usr/local/bin/k3snode-uninstall.sh
info "k3snode uninstalled; K3s is untouched (its own uninstall script removes it)"
