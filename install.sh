#!/bin/sh
# k3snode installer.
#
#   curl -sfL https://github.com/k3snode/k3snode/releases/latest/download/install.sh \
#       | K3S_URL=https://server.example.com:6443 K3S_TOKEN=<cluster token> sh -
#   K3S_URL=… K3S_TOKEN=… ./install.sh   # as root, in a checkout, an unpacked source tarball or a
#                                         # downloaded release set (sudo drops the environment:
#                                         # export the variables, then sudo -E ./install.sh)
#
# Installs k3snode the best way this machine allows — the .deb with apt, the .rpm with dnf, else a
# virtualenv in /opt/k3snode — has `k3snode configure` save what defines the node
# (/etc/k3snode/k3snode.env; secrets as 0600 files in /var/lib/k3snode), then enables and starts
# k3snode.service. Every download is checked against the release's SHA256SUMS. Running it again
# upgrades in place and changes nothing else; /usr/local/bin/k3snode-uninstall.sh removes what it
# installed. Bad input is refused, in one line, before anything is installed or changed.
#
# The node (as K3s's installer; saved, so that later runs and reboots render the same node):
#   K3S_URL           server to join, https://host:6443 (the role then defaults to agent)
#   K3S_TOKEN         cluster token (stored as a 0600 file; never in argv, never printed)
#   K3S_TOKEN_FILE    or a file holding it
#   K3S_NODE_NAME     node name for K3s
#   K3SNODE_ROLE      server or agent; default as K3s's installer: agent with K3S_URL, else server
#   K3SNODE_MESH      wireguard-native (default), tailscale or none
#   K3SNODE_TAILSCALE_AUTH_KEY / K3SNODE_TAILSCALE_AUTH_KEY_FILE   Tailscale auth key (or its file)
#   K3SNODE_K3S_CLUSTER_INIT=true   first server of an embedded-etcd cluster
#   Given none of these, the installer only installs: k3snode then waits, unconfigured, for
#   settings (/etc/k3snode/config.toml or a later run with these variables).
#
# The installation:
#   INSTALL_K3SNODE_VERSION=v0.1.0   release to install; default: the latest
#   INSTALL_K3SNODE_METHOD           auto (default), deb, rpm or venv
#   INSTALL_K3SNODE_SKIP_ENABLE=true neither enable nor start k3snode.service
#   INSTALL_K3SNODE_SKIP_START=true  enable, but do not start
#   INSTALL_K3SNODE_K3S=true         also install K3s with its own installer (INSTALL_K3S_SKIP_START=true,
#                                    INSTALL_K3S_EXEC=<role>; other INSTALL_K3S_* variables pass
#                                    through) and start it once k3snode is ready
#   INSTALL_K3SNODE_RELEASE_URL      releases base URL, default https://github.com/k3snode/k3snode/releases
#                                    (files under <url>/download/<version>/ and <url>/latest/download/)
#   INSTALL_K3SNODE_K3S_INSTALL_URL  K3s's installer, default https://get.k3s.io
#   PIP_INDEX_URL, PIP_FIND_LINKS... the virtualenv takes k3snode's dependencies from PyPI through
#                                    pip; pip's own settings (environment, /etc/pip.conf) pick a mirror
#
# shellcheck disable=SC2030,SC2031  # variables exported inside ( … ) are meant for that child alone
set -eu
umask 022

RELEASE_URL=${INSTALL_K3SNODE_RELEASE_URL:-https://github.com/k3snode/k3snode/releases}
K3S_INSTALL_URL=${INSTALL_K3SNODE_K3S_INSTALL_URL:-https://get.k3s.io}
VENV=/opt/k3snode
ETC=/etc/k3snode
ENV_FILE=$ETC/k3snode.env
SETTINGS=$ETC/config.toml
STATE=/var/lib/k3snode
LIB=/usr/local/lib/k3snode
MANIFEST=$LIB/install.manifest
UNINSTALL=/usr/local/bin/k3snode-uninstall.sh
LINK=/usr/local/bin/k3snode
VENV_UNIT=/etc/systemd/system/k3snode.service
# What this installer may create; the manifest records which of them it did (for the uninstaller).
TRACKED="$ETC $ENV_FILE $SETTINGS $STATE $STATE/token $STATE/tailscale.key $VENV $LINK $VENV_UNIT $UNINSTALL $LIB"

info() { echo "[INFO]  $*"; }
# usage: a mistake in what the installer was given (exit 2); fail: it could not be done (exit 1).
usage() {
    echo "[ERROR]  $*" >&2
    exit 2
}
fail() {
    echo "[ERROR]  $*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
is_true() { [ "${1:-}" = true ]; }

sha256() {
    if have sha256sum; then
        sha256sum "$1" | cut -d ' ' -f 1
    elif have shasum; then
        shasum -a 256 "$1" | cut -d ' ' -f 1
    else
        openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1
    fi
}

# quietly CMD...: run CMD with its output in a log; on failure show the log's tail on stderr.
quietly() {
    if "$@" >"$TMP/log" 2>&1; then
        return 0
    else
        status=$?
        tail -n 20 "$TMP/log" >&2
        return "$status"
    fi
}

# saved KEY: the value k3snode configure saved for KEY in k3snode.env (empty when none).
saved() {
    [ -f "$ENV_FILE" ] || return 0
    sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1 | sed -e "s/^[\"']//" -e "s/[\"']\$//"
}

# setting KEY: the value of KEY in the settings file (first match in any table; empty when none).
setting() {
    [ -f "$SETTINGS" ] || return 0
    sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*[\"']\{0,1\}\([^\"'#]*\).*/\1/p" "$SETTINGS" \
        | head -n 1 | sed 's/[[:space:]]*$//'
}

check_bool() {
    case ${2:-} in
        "" | true | false) ;;
        *) usage "$1: must be true or false (got '$2')" ;;
    esac
}

check_file() {
    [ -z "${2:-}" ] && return 0
    if [ ! -f "$2" ] || [ ! -r "$2" ]; then usage "$1: cannot read $2"; fi
    [ -s "$2" ] || usage "$1: $2 is empty"
}

# --- what was asked, checked before anything is installed or changed ---
validate() {
    [ $# -eq 0 ] || usage "install.sh takes no arguments (got '$1'); everything is set through the environment (see its header)"
    [ "$(id -u)" -eq 0 ] || usage "must run as root (curl -sfL … | sudo K3S_URL=… K3S_TOKEN=… sh -)"

    case ${K3SNODE_ROLE:-} in
        "" | server | agent) ;;
        *) usage "K3SNODE_ROLE: must be server or agent (got '$K3SNODE_ROLE')" ;;
    esac
    case ${K3SNODE_MESH:-} in
        "" | wireguard-native | tailscale | none) ;;
        *) usage "K3SNODE_MESH: must be wireguard-native, tailscale or none (got '$K3SNODE_MESH')" ;;
    esac
    case ${K3S_URL:-} in
        "" | https://?*) ;;
        *) usage "K3S_URL: only https:// URLs are supported (got '$K3S_URL')" ;;
    esac
    check_file K3S_TOKEN_FILE "${K3S_TOKEN_FILE:-}"
    check_file K3SNODE_TAILSCALE_AUTH_KEY_FILE "${K3SNODE_TAILSCALE_AUTH_KEY_FILE:-}"
    check_bool K3SNODE_K3S_CLUSTER_INIT "${K3SNODE_K3S_CLUSTER_INIT:-}"
    check_bool INSTALL_K3SNODE_SKIP_ENABLE "${INSTALL_K3SNODE_SKIP_ENABLE:-}"
    check_bool INSTALL_K3SNODE_SKIP_START "${INSTALL_K3SNODE_SKIP_START:-}"
    check_bool INSTALL_K3SNODE_K3S "${INSTALL_K3SNODE_K3S:-}"
    case ${INSTALL_K3SNODE_VERSION:-} in
        *[!A-Za-z0-9.+~-]*) usage "INSTALL_K3SNODE_VERSION: not a version (got '$INSTALL_K3SNODE_VERSION')" ;;
    esac

    # The role, as K3s's installer decides it, when this run says anything about the node and
    # nothing says the role yet — so the node is configured and K3s gets the same role.
    ROLE=${K3SNODE_ROLE:-}
    given=
    for v in "${K3S_URL:-}" "$TOKEN" "${K3S_TOKEN_FILE:-}" "${K3S_NODE_NAME:-}" "${K3SNODE_MESH:-}" \
        "$TSKEY" "${K3SNODE_TAILSCALE_AUTH_KEY_FILE:-}" "${K3SNODE_K3S_CLUSTER_INIT:-}"; do
        if [ -n "$v" ]; then given=1; fi
    done
    if is_true "${INSTALL_K3SNODE_K3S:-}"; then given=1; fi
    URL=${K3S_URL:-$(saved K3S_URL)}
    URL=${URL:-$(setting server)}
    EFFECTIVE_ROLE=${ROLE:-$(saved K3SNODE_ROLE)}
    EFFECTIVE_ROLE=${EFFECTIVE_ROLE:-$(setting role)}
    if [ -z "$EFFECTIVE_ROLE" ] && [ -n "$given" ]; then
        if [ -n "$URL" ]; then ROLE=agent; else ROLE=server; fi
        EFFECTIVE_ROLE=$ROLE
    fi
    if [ "$EFFECTIVE_ROLE" = agent ] && [ -z "$URL" ]; then
        usage "an agent needs K3S_URL, the server to join (https://host:6443)"
    fi
    if [ -n "$URL" ] && [ -z "$TOKEN" ] && [ -z "${K3S_TOKEN_FILE:-}" ] \
        && [ -z "$(saved K3S_TOKEN_FILE)" ] && [ -z "$(setting token_file)" ]; then
        usage "K3S_URL is set, but K3S_TOKEN or K3S_TOKEN_FILE is not (joining $URL needs the cluster token)"
    fi
    have systemctl || usage "k3snode runs as a systemd service, and systemctl was not found"

    # Where k3snode comes from: this directory (a checkout or source tarball; a release set), or
    # the release URL.
    SRC=
    case $0 in
        install.sh | */install.sh) SRC=$(cd "$(dirname "$0")" && pwd) ;;
    esac
    if [ -n "$SRC" ] && [ -f "$SRC/SHA256SUMS" ]; then
        FROM=release-dir
    elif [ -n "$SRC" ] && [ -f "$SRC/pyproject.toml" ] && [ -f "$SRC/k3snode/__init__.py" ]; then
        FROM=source
    else
        FROM=download
        have curl || have wget || usage "needs curl or wget to download k3snode"
    fi

    # How: the method the installer used before, else the best this machine allows.
    METHOD=${INSTALL_K3SNODE_METHOD:-auto}
    PREVIOUS=$(sed -n 's/^method=//p' "$MANIFEST" 2>/dev/null | tail -n 1)
    case $METHOD in
        auto)
            if [ "$FROM" = source ]; then
                METHOD=venv
            elif [ -n "$PREVIOUS" ]; then
                METHOD=$PREVIOUS
            elif have apt-get && have dpkg; then
                METHOD=deb
            elif have dnf && have rpm; then
                METHOD=rpm
            else
                METHOD=venv
            fi
            ;;
        deb) if ! have apt-get || ! have dpkg; then usage "INSTALL_K3SNODE_METHOD=deb: apt-get or dpkg not found"; fi ;;
        rpm) if ! have dnf || ! have rpm; then usage "INSTALL_K3SNODE_METHOD=rpm: dnf or rpm not found"; fi ;;
        venv) ;;
        *) usage "INSTALL_K3SNODE_METHOD: must be auto, deb, rpm or venv (got '$METHOD')" ;;
    esac
    if [ "$FROM" = source ] && [ "$METHOD" != venv ]; then
        usage "INSTALL_K3SNODE_METHOD=$METHOD: a checkout installs into a virtualenv (venv); the packages are in the release set"
    fi
    if [ -n "$PREVIOUS" ] && [ "$PREVIOUS" != "$METHOD" ]; then
        usage "k3snode was installed here as $PREVIOUS; run $UNINSTALL first to install it as $METHOD"
    fi
    if [ "$METHOD" = venv ]; then
        have python3 || usage "the virtualenv needs python3 (3.9 or newer), and it was not found"
        python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' \
            || usage "the virtualenv needs Python 3.9 or newer (python3 is $(python3 -V 2>&1))"
        if package_installed; then
            usage "k3snode is installed as a distribution package; remove it first, or use INSTALL_K3SNODE_METHOD=deb/rpm"
        fi
    elif [ -z "$PREVIOUS" ] && [ -e "$VENV" ]; then
        usage "$VENV exists (a virtualenv install?); remove it first, or use INSTALL_K3SNODE_METHOD=venv"
    fi
}

package_installed() {
    if have dpkg-query; then
        dpkg-query -W -f '${Status}' k3snode 2>/dev/null | grep -q 'ok installed' && return 0
    fi
    if have rpm; then
        rpm -q k3snode >/dev/null 2>&1 && return 0
    fi
    return 1
}

# --- downloads: everything fetched and verified before anything is installed ---
download() {  # download FILE URL: fails with one line saying why
    if have curl; then
        why=$(curl -fsSL --retry 2 -o "$1" "$2" 2>&1) && return 0
    else
        why=$(wget -nv -O "$1" "$2" 2>&1) && return 0
    fi
    fail "download failed: $2 ($(echo "$why" | tail -n 1))"
}

fetch() {  # fetch NAME: the release file NAME into $TMP, from this directory or the release URL
    if [ "$FROM" = release-dir ]; then
        [ -f "$SRC/$1" ] || fail "$SRC/$1: missing from the release set"
        cp "$SRC/$1" "$TMP/$1"
    else
        info "Downloading $BASE/$1"
        download "$TMP/$1" "$BASE/$1"
    fi
}

verify() {  # verify NAME: its SHA-256 is the one SHA256SUMS lists
    expected=$(awk -v f="$1" '$2 == f || $2 == "*" f { print $1; exit }' "$TMP/SHA256SUMS")
    [ -n "$expected" ] || fail "SHA256SUMS lists no $1"
    actual=$(sha256 "$TMP/$1")
    [ "$expected" = "$actual" ] || fail "$1: SHA-256 mismatch: SHA256SUMS says $expected, the file has $actual"
}

pick() {  # pick PATTERN: the release file whose name matches the awk regex PATTERN
    name=$(awk -v re="$1" '$2 ~ re { sub(/^\*/, "", $2); print $2; exit }' "$TMP/SHA256SUMS")
    [ -n "$name" ] || fail "SHA256SUMS lists no file matching $1"
    echo "$name"
}

gather() {
    if [ -n "${INSTALL_K3SNODE_VERSION:-}" ]; then
        BASE=$RELEASE_URL/download/v${INSTALL_K3SNODE_VERSION#v}
    else
        BASE=$RELEASE_URL/latest/download
    fi
    if [ "$FROM" = source ]; then
        PAYLOAD=$SRC
        cp "$SRC/systemd/k3snode.service" "$TMP/k3snode.service"
        cp "$SRC/k3snode-uninstall.sh" "$TMP/k3snode-uninstall.sh"
    else
        fetch SHA256SUMS
        case $METHOD in
            deb) PAYLOAD=$(pick '^k3snode_.*_all\.deb$') ;;
            rpm) PAYLOAD=$(pick '^k3snode-.*\.noarch\.rpm$') ;;
            venv) PAYLOAD=$(pick '^k3snode-.*-py3-none-any\.whl$') ;;
        esac
        files="$PAYLOAD k3snode-uninstall.sh"
        if [ "$METHOD" = venv ]; then files="$files k3snode.service"; fi
        for f in $files; do
            fetch "$f"
            verify "$f"
        done
        info "Verified $files against SHA256SUMS"
        PAYLOAD=$TMP/$PAYLOAD
    fi
    if is_true "${INSTALL_K3SNODE_K3S:-}"; then
        info "Downloading K3s's installer $K3S_INSTALL_URL"
        download "$TMP/k3s-install.sh" "$K3S_INSTALL_URL"
    fi
}

# --- installing ---
apt_lists_empty() {
    for f in /var/lib/apt/lists/*_Packages*; do
        [ -e "$f" ] && return 1
    done
    return 0
}

apt_install() {  # apt_install ARGS...: apt-get install, with fresh lists when they are empty or stale
    if apt_lists_empty; then
        info "apt-get update (the package lists are empty)"
        quietly apt-get update || fail "apt-get update failed"
    fi
    set -- -y --no-install-recommends -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold "$@"
    if ! quietly apt-get install "$@"; then
        info "apt-get update, then once more"
        quietly apt-get update || fail "apt-get update failed"
        quietly apt-get install "$@" || fail "apt-get install failed"
    fi
}

install_file() {  # install_file SRC DEST MODE: replace DEST atomically when its content differs
    if [ -f "$2" ] && cmp -s "$1" "$2"; then
        chmod "$3" "$2"
        return 0
    fi
    mkdir -p "$(dirname "$2")"
    cp "$1" "$2.tmp.$$"
    chmod "$3" "$2.tmp.$$"
    mv -f "$2.tmp.$$" "$2"
}

install_k3snode() {
    export DEBIAN_FRONTEND=noninteractive
    case $METHOD in
        deb)
            chmod 0755 "$TMP"
            chmod 0644 "$PAYLOAD"
            info "Installing $(basename "$PAYLOAD") with apt-get"
            apt_install "$PAYLOAD"
            BIN=/usr/bin/k3snode
            ;;
        rpm)
            info "Installing $(basename "$PAYLOAD") with dnf"
            quietly dnf install -y "$PAYLOAD" || fail "dnf install failed"
            BIN=/usr/bin/k3snode
            ;;
        venv)
            if [ ! -x "$VENV/bin/python" ]; then
                info "Creating the virtualenv $VENV"
                if ! python3 -m venv "$VENV" >"$TMP/log" 2>&1; then
                    # Debian and Ubuntu ship venv's pip bootstrap separately.
                    rm -rf "$VENV"
                    have apt-get || fail "python3 -m venv failed (is Python's venv module installed?)"
                    info "Installing python3-venv (Python's venv module) with apt-get"
                    apt_install python3-venv
                    quietly python3 -m venv "$VENV" || fail "python3 -m venv $VENV failed"
                fi
            fi
            info "Installing k3snode into $VENV (dependencies through pip)"
            quietly "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input \
                --no-warn-script-location "$PAYLOAD" || fail "pip install failed"
            ln -sfn "$VENV/bin/k3snode" "$LINK"
            sed "s|^\(Exec[A-Za-z]*=[-+!@:]*\)/usr/bin/k3snode |\1$VENV/bin/k3snode |" \
                "$TMP/k3snode.service" >"$TMP/k3snode.service.venv"
            install_file "$TMP/k3snode.service.venv" "$VENV_UNIT" 0644
            BIN=$VENV/bin/k3snode
            ;;
    esac
    install_file "$TMP/k3snode-uninstall.sh" "$UNINSTALL" 0755
}

# The node's settings, through k3snode itself; secrets only through its environment.
# configure [--check]
configure() {
    (
        if [ -n "$TOKEN" ]; then
            K3S_TOKEN=$TOKEN
            export K3S_TOKEN
        fi
        if [ -n "$TSKEY" ]; then
            K3SNODE_TAILSCALE_AUTH_KEY=$TSKEY
            export K3SNODE_TAILSCALE_AUTH_KEY
        fi
        if [ -n "$ROLE" ]; then
            K3SNODE_ROLE=$ROLE
            export K3SNODE_ROLE
        fi
        exec "$BIN" configure "$@"
    )
}

# An installed k3snode checks the settings this run would save before anything is changed: a
# settings mistake (exit 2, its one line) stops the installer here.
precheck() {
    for BIN in /usr/bin/k3snode "$VENV/bin/k3snode"; do
        if [ -x "$BIN" ] && "$BIN" configure --help >/dev/null 2>&1; then
            status=0
            why=$(configure --check 2>&1) || status=$?
            if [ "$status" -eq 2 ]; then
                echo "$why" | grep -v '^k3snode: warning' >&2
                exit 2
            fi
            return 0
        fi
    done
}

install_k3s() {
    info "Installing K3s ($EFFECTIVE_ROLE) with its installer, not started"
    (
        # K3s reads the server, token file and node name from the config.yaml k3snode writes.
        unset K3S_URL K3S_TOKEN_FILE K3S_NODE_NAME
        INSTALL_K3S_SKIP_START=true
        INSTALL_K3S_EXEC=$EFFECTIVE_ROLE
        export INSTALL_K3S_SKIP_START INSTALL_K3S_EXEC
        exec sh "$TMP/k3s-install.sh"
    ) || fail "K3s's installer failed"
}

fingerprint() {  # what k3snode runs with: program, unit, settings, secrets
    {
        for f in "$ENV_FILE" "$SETTINGS" "$STATE/token" "$STATE/tailscale.key" "$VENV_UNIT" \
            /lib/systemd/system/k3snode.service /usr/lib/systemd/system/k3snode.service \
            /var/lib/dpkg/info/k3snode.md5sums "$VENV"/lib/python3*/site-packages/k3snode-*.dist-info/RECORD; do
            if [ -f "$f" ]; then echo "$f $(sha256 "$f")"; fi
        done
        if have rpm; then rpm -q --qf '%{VERSION}-%{RELEASE} %{BUILDTIME}\n' k3snode 2>/dev/null || true; fi
    } | cksum
}

write_manifest() {
    mkdir -p "$LIB"
    {
        echo "# Written by k3snode's install.sh, read by $UNINSTALL: what it installed."
        echo "method=$METHOD"
        echo "package=$PACKAGE"
        for p in $CREATED; do echo "created=$p"; done
    } >"$MANIFEST.tmp.$$"
    mv -f "$MANIFEST.tmp.$$" "$MANIFEST"
}

main() {
    TOKEN=${K3S_TOKEN:-}
    TSKEY=${K3SNODE_TAILSCALE_AUTH_KEY:-}
    # Secrets go to `k3snode configure` alone, never to the other programs this runs.
    unset K3S_TOKEN K3SNODE_TAILSCALE_AUTH_KEY
    validate "$@"
    precheck

    TMP=$(mktemp -d "${TMPDIR:-/tmp}/k3snode-install.XXXXXXXX")
    trap 'rm -rf "$TMP"' EXIT
    trap 'exit 130' INT TERM
    gather

    # Only now is anything changed.
    CREATED=" $(sed -n 's/^created=//p' "$MANIFEST" 2>/dev/null | tr '\n' ' ') "
    existed=
    for p in $TRACKED; do
        if [ -e "$p" ] || [ -L "$p" ]; then existed="$existed $p "; fi
    done
    PACKAGE=$(sed -n 's/^package=//p' "$MANIFEST" 2>/dev/null | tail -n 1)
    if [ -z "$PACKAGE" ]; then
        if [ "$METHOD" != venv ] && package_installed; then PACKAGE=preinstalled; else PACKAGE=installed; fi
    fi
    before=$(fingerprint)
    was_enabled=$(systemctl is-enabled k3snode.service 2>/dev/null || true)

    if is_true "${INSTALL_K3SNODE_K3S:-}"; then install_k3s; fi
    install_k3snode
    configure || {
        status=$?
        echo "[ERROR]  k3snode configure failed (above); k3snode is installed but was not started" >&2
        exit "$status"
    }
    for p in $TRACKED; do
        case $existed in *" $p "*) continue ;; esac
        case $CREATED in *" $p "*) continue ;; esac
        if [ -e "$p" ] || [ -L "$p" ]; then CREATED="$CREATED$p "; fi
    done
    write_manifest

    booted=
    if [ -d /run/systemd/system ]; then
        booted=1
        systemctl daemon-reload
    fi
    if is_true "${INSTALL_K3SNODE_SKIP_ENABLE:-}"; then
        # The .deb enables its unit on installation: undo that when it was not enabled before.
        if [ "$was_enabled" != enabled ] && systemctl is-enabled --quiet k3snode.service 2>/dev/null; then
            systemctl disable --quiet k3snode.service
        fi
        info "k3snode.service not enabled (INSTALL_K3SNODE_SKIP_ENABLE)"
    else
        systemctl enable --quiet k3snode.service
        info "k3snode.service enabled"
    fi
    version=$("$BIN" --version 2>/dev/null || echo k3snode)
    if is_true "${INSTALL_K3SNODE_SKIP_ENABLE:-}" || is_true "${INSTALL_K3SNODE_SKIP_START:-}"; then
        info "$version installed ($METHOD), not started (INSTALL_K3SNODE_SKIP_*)"
    elif [ -z "$booted" ]; then
        info "$version installed ($METHOD); systemd is not running here, so nothing was started"
    else
        if [ "$(fingerprint)" != "$before" ] && systemctl is-active --quiet k3snode.service; then
            info "Restarting k3snode.service (it changed)"
            systemctl restart k3snode.service
        else
            systemctl start k3snode.service
        fi
        info "$version running ($METHOD): $(systemctl show -p StatusText --value k3snode.service)"
        if is_true "${INSTALL_K3SNODE_K3S:-}" && ! is_true "${INSTALL_K3S_SKIP_ENABLE:-}" \
            && ! is_true "${INSTALL_K3S_SKIP_START:-}"; then
            unit=k3s.service
            if [ "$EFFECTIVE_ROLE" = agent ]; then unit=k3s-agent.service; fi
            info "Starting $unit"
            systemctl start --no-block "$unit"
        fi
    fi
    info "Uninstall: $UNINSTALL"
}

main "$@"
