#!/usr/bin/env bash
# Install what the tests need, then run them: lint, then the tiers plain → slow → netns → system.
#   scripts/test.sh            all tiers (CI runs this, as root); plain also on Python 3.9
#   scripts/test.sh plain      the tests that need no privileges, in parallel (pytest-xdist)
#   scripts/test.sh slow       the long versions of the torture and race loops (plain runs short
#                              ones) and the property tests on new random examples
#   scripts/test.sh netns      tests in network namespaces (root)
#   scripts/test.sh system     systemd-nspawn / packaging / qemu tests (root)
# Extra arguments after the tier go to pytest (e.g. scripts/test.sh plain -k settings).
# K3SNODE_TEST_WORKERS: pytest-xdist workers for plain and slow (default 4: most plain tests wait
# on processes, servers and timeouts rather than compute, so 4 workers fill 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
TIER=${1:-all}; shift || true
case "$TIER" in
    all|plain|slow|netns|system) ;;
    *) echo "unknown tier: $TIER (plain, slow, netns, system or all)" >&2; exit 2 ;;
esac
WORKERS=${K3SNODE_TEST_WORKERS:-4}
START=$(date +%s)
TIMES=()

log() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - START ))"; }

# 1. Debian packages of this tier's section of tests/apt-packages.txt (all: every section), only
#    the missing ones; apt-get update at most once.
apt_packages() {  # apt_packages TIER: the package names of [TIER], or of every section for all
    awk -v want="$1" '
        { sub(/#.*/, ""); gsub(/^[ \t]+|[ \t]+$/, "") }
        /^\[.*\]$/ { section = substr($0, 2, length($0) - 2); next }
        $0 != "" && (want == "all" || section == want) && !seen[$0]++ { print }
    ' tests/apt-packages.txt
}
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    section=$TIER; [ "$TIER" = slow ] && section=plain
    mapfile -t wanted < <(apt_packages "$section")
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

# Bytecode goes to a cache outside the tree: with PYTHONDONTWRITEBYTECODE each of the hundreds of
# k3snode processes the tests start would compile k3snode again.
if [ -n "${PYTHONDONTWRITEBYTECODE:-}" ]; then
    export PYTHONPYCACHEPREFIX=${PYTHONPYCACHEPREFIX:-$PWD/.venv/pycache}
    unset PYTHONDONTWRITEBYTECODE
fi

# 4. Tests, tier by tier; each tier's wall time is printed after it and again at the end.
run_tier() {  # run_tier NAME VENV MARKEXPR [pytest args]
    local name=$1 venv=$2 expr=$3 t0 rc=0; shift 3
    log "pytest: $name tier ($("$venv/bin/python" --version))"
    t0=$(date +%s)
    "$venv/bin/python" -m pytest -q -m "$expr" "$@" || rc=$?
    TIMES+=("$(printf '%-22s %4ss' "$name" "$(( $(date +%s) - t0 ))")")
    printf '== %s tier: %ss\n' "$name" "$(( $(date +%s) - t0 ))"
    [ $rc = 0 ] || [ $rc = 5 ] || exit $rc  # 5: no tests selected
}
PLAIN="not netns and not system and not slow"
PARALLEL=(-n "$WORKERS" --dist worksteal)
case "$TIER" in
    plain|all)
        run_tier plain .venv "$PLAIN" "${PARALLEL[@]}" "$@"
        if [ -n "$PY39" ]; then
            log "python 3.9 venv (.venv39)"
            make_venv .venv39 "$PY39"
            run_tier "plain (python 3.9)" .venv39 "$PLAIN" "${PARALLEL[@]}" "$@"
        fi
        ;;&
    slow|all)  # plus the property tests again, on new random examples (see tests/conftest.py)
        K3SNODE_HYPOTHESIS_PROFILE=explore run_tier slow .venv \
            "(slow or hypothesis) and not netns and not system" "${PARALLEL[@]}" "$@" ;;&
    netns|all)
        run_tier netns .venv "netns" "$@" ;;&
    system|all)
        run_tier system .venv "system" "$@" ;;&
    *) ;;
esac
log "done"
printf '%s\n' "${TIMES[@]}"
