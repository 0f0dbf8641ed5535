#!/usr/bin/env bash
# Install everything the tests need, then run them: lint, then the tiers plain → netns → system.
#   scripts/test.sh            all tiers (CI runs this, as root)
#   scripts/test.sh plain      only the tests that need no privileges
#   scripts/test.sh netns      only tests in network namespaces (root)
#   scripts/test.sh system     only systemd-nspawn / packaging / qemu tests (root)
# Extra arguments after the tier go to pytest (e.g. scripts/test.sh plain -k settings).
set -euo pipefail
cd "$(dirname "$0")/.."
TIER=${1:-all}; shift || true
START=$(date +%s)

log() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - START ))"; }

# 1. Debian packages (only the missing ones; apt-get update at most once).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    mapfile -t wanted < <(sed -e 's/#.*//' -e '/^\s*$/d' tests/apt-packages.txt)
    missing=()
    for p in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "apt-get install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

# 2. Python environments: the default python3 (3.11 here) and, when present, 3.9 — the oldest
#    Python k3snode supports (EL 9) — for the plain tier.
PY=${PYTHON:-python3}
make_venv() {  # make_venv DIR PYTHON
    if [ ! -x "$1/bin/python" ]; then
        "$2" -m venv "$1"
    fi
    "$1/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]"
}
log "python venv (.venv, $($PY --version))"
make_venv .venv "$PY"
PY39=""
for c in "$HOME"/.pyenv/versions/3.9*/bin/python3.9 /usr/bin/python3.9 python3.9; do
    # a pyenv shim may exist without the version being active: ask it to run
    if "$c" -c 'import sys; assert sys.version_info[:2] == (3, 9)' >/dev/null 2>&1; then
        PY39=$(command -v "$c"); break
    fi
done

# 3. Lint.
log "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

# 4. Tests, tier by tier.
run_tier() {  # run_tier NAME MARKEXPR [pytest args]
    local name=$1 expr=$2; shift 2
    log "pytest: $name tier"
    .venv/bin/python -m pytest -q -m "$expr" "$@" || { rc=$?; [ $rc = 5 ] || exit $rc; }  # 5: none
}
case "$TIER" in
    plain|all)
        run_tier plain "not netns and not system" "$@"
        if [ -n "$PY39" ]; then
            log "python 3.9 venv (.venv39)"
            make_venv .venv39 "$PY39"
            log "pytest: plain tier on $(.venv39/bin/python --version)"
            .venv39/bin/python -m pytest -q -m "not netns and not system" "$@" || { rc=$?; [ $rc = 5 ] || exit $rc; }
        fi
        ;;&
    netns|all)
        run_tier netns "netns" "$@" ;;&
    system|all)
        run_tier system "system" "$@" ;;
    plain|netns) ;;
    *) echo "unknown tier: $TIER (plain, netns, system or all)" >&2; exit 2 ;;
esac
log "done"
