"""``k3snode status``: what the running daemon reports (its status file); exit 1 when none runs."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

from k3snode.cli_settings import load_settings
from k3snode.config.load import read_toml
from k3snode.config.model import DEFAULT_CONFIG, SettingsError
from k3snode.config.schema import spec
from k3snode.fileio import pid_alive
from k3snode.health.statusfile import read_status
from k3snode.logs import duration

JSON_HELP = "print what the daemon reports as JSON (its status file, plus updated)"
FLAGS = ("run-dir",)
EXAMPLES = (
    ("What the daemon reports:", "k3snode status"),
    ("The same as JSON, for scripts:", "k3snode status --json"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help=JSON_HELP)


def run(args: argparse.Namespace) -> int:

    try:
        path = load_settings(args).status_file
    except SettingsError as e:  # the daemon runs on its previous settings: still show it
        print(f"k3snode: error: {e}", file=sys.stderr)
        path = os.path.join(_run_dir(args), "status.json")
    data = read_status(path)
    if data is None:
        print(f"k3snode is not running (no status in {path})", file=sys.stderr)
        return 1
    pid = data.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        print(f"k3snode is not running (stale status in {path} from pid {pid})", file=sys.stderr)
        return 1
    with contextlib.suppress(OSError):
        data["updated"] = os.stat(path).st_mtime
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(describe(data))
    return 0


def _run_dir(args: argparse.Namespace) -> str:
    """The run directory when the settings do not load: the flag, the environment, what the
    settings file says if it is at least TOML, else the default."""

    if getattr(args, "run_dir", None):
        return args.run_dir
    if os.environ.get("K3SNODE_PATHS_RUN_DIR"):
        return os.environ["K3SNODE_PATHS_RUN_DIR"]
    path = args.config or os.environ.get("K3SNODE_CONFIG") or DEFAULT_CONFIG
    with contextlib.suppress(SettingsError):
        value = read_toml(path).get("paths", {}).get("run_dir")
        if isinstance(value, str) and value.startswith("/"):
            return value
    return str(spec("paths", "run_dir").default)


def _when(t: object) -> str:
    if not isinstance(t, (int, float)):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def _ago(t: object, now: float) -> str:
    """``5 s``, ``3 min 2 s``: how long ago unix time ``t`` was."""

    if not isinstance(t, (int, float)):
        return "?"
    return duration(max(0.0, now - t)).replace(".0 s", " s")


def _source(a: dict, provider: object) -> str:
    src = a.get("source") or "?"
    return f"metadata, {provider}" if src == "metadata" and provider else src


def describe(d: dict, now: float | None = None) -> str:
    """The human view: state, node, addresses, K3s, the last change and restart, every check."""
    now = time.time() if now is None else now
    h = d.get("health") or {}
    checks = h.get("checks") or []
    if d.get("configured") is False:  # nothing says what the node is yet (k3snode configure)
        state = "not configured"
    elif not d.get("ready"):
        state = "starting"
    elif h.get("status") == "ok":
        state = "ok"
    else:
        bad = [c.get("check") for c in checks if c.get("state") == "failing"]
        state = "degraded (" + ", ".join(str(b) for b in bad) + ")"
    rows = [
        ("state", f"{state}; running for {_ago(d.get('started'), now)} (pid {d.get('pid')})"),
        ("node", f"{d.get('role')}, mesh {d.get('mesh')}")
        if d.get("configured") is not False
        else ("settings", str(d.get("summary"))),
    ]
    addrs = d.get("addresses") or []
    shown = ", ".join(f"{a['address']} ({_source(a, d.get('provider'))})" for a in addrs)
    rows.append(("addresses", shown or "none yet"))
    if d.get("candidate"):
        rows.append(("confirming", ", ".join(d["candidate"])))
    rows.append(("K3s", f"{d.get('k3s_state') or d.get('k3s_unit')}"))
    rows.append(("K3s config", str(d.get("k3s_config"))))
    ch = d.get("last_change")
    if ch:
        before = ", ".join(ch.get("from") or []) or "none"
        after = ", ".join(ch.get("to") or []) or "none"
        rows.append(("last change", f"{_ago(ch.get('time'), now)} ago: {before} -> {after}"))
    else:
        rows.append(("last change", "none since start"))
    rs = d.get("last_restart")
    if rs:
        took = f" after {rs['duration']:g} s" if rs.get("duration") else ""
        rows.append(
            (
                "last restart",
                f"{_ago(rs.get('time'), now)} ago: {rs.get('outcome')}{took} ({rs.get('detail')})",
            )
        )
    elif d.get("restart_pending"):
        rows.append(("last restart", "pending"))
    else:
        rows.append(("last restart", "none since start"))
    reg = d.get("registration")
    if reg:
        shown = ", ".join(reg.get("published") or []) or "nothing"
        text = f"{reg.get('name')} at {reg.get('server')}: {shown}"
        last = reg.get("last_update")
        if last:
            outcome = "ok" if last.get("ok") else "failed"
            text += (
                f"; last update {_ago(last.get('time'), now)} ago: {outcome}: {last.get('detail')}"
            )
        rows.append(("registration", text))
    width = max(len(k) for k, _ in rows) + 2
    lines = [f"{k + ':':{width}}{v}" for k, v in rows]
    if checks:
        lines.append("checks:")
        name_w = max(len(str(c.get("check"))) for c in checks) + 2
        for c in checks:
            st = c.get("state", "?")
            if st == "ok":
                age = f"ok for {_ago(c.get('changed'), now)}" if c.get("changed") else "ok"
            else:
                age = f"{st} for {_ago(c.get('since'), now)}"
            lines.append(f"  {c.get('check')!s:{name_w}}{age:21} {c.get('detail')}")
    peers = d.get("peers") or []
    if peers:
        lines.append("peers:")
    for p in peers:
        if "online" in p:
            pstate = "online" if p["online"] else "offline"
        elif "handshake_age" in p:
            pstate = f"handshake {p['handshake_age']:.0f}s ago" + (", stale" if p["stale"] else "")
        else:
            pstate = "no handshake" + (", stale" if p["stale"] else "")
        name = p.get("name") or p.get("peer", "")[:12]
        lines.append(f"  {p.get('interface')} {name} {p.get('endpoint') or '-'}: {pstate}")
    return "\n".join(lines)
