"""``k3snode status``: what the running daemon reports (its status file); exit 1 when none runs."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from k3snode.cli import load_settings
    from k3snode.fileio import pid_alive
    from k3snode.health import read_status
    from k3snode.settings import SettingsError

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
    from k3snode import settings as settings_mod

    if getattr(args, "run_dir", None):
        return args.run_dir
    if os.environ.get("K3SNODE_PATHS_RUN_DIR"):
        return os.environ["K3SNODE_PATHS_RUN_DIR"]
    path = args.config or os.environ.get("K3SNODE_CONFIG") or settings_mod.DEFAULT_CONFIG
    with contextlib.suppress(settings_mod.SettingsError):
        value = settings_mod.read_toml(path).get("paths", {}).get("run_dir")
        if isinstance(value, str) and value.startswith("/"):
            return value
    return str(settings_mod.spec("paths", "run_dir").default)


def _when(t: object) -> str:
    if not isinstance(t, (int, float)):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def describe(d: dict) -> str:
    h = d.get("health") or {}
    lines = [
        f"k3snode:      running (pid {d.get('pid')}, since {_when(d.get('started'))})",
        f"health:       {h.get('status', '?')}",
    ]
    if d.get("configured") is False:
        lines.append(f"settings:     {d.get('summary')}")
    else:
        lines.append(f"role/mesh:    {d.get('role')}, {d.get('mesh')}")
    addrs = d.get("addresses") or []
    shown = ", ".join(f"{a['address']} ({a['source']})" for a in addrs) or "-"
    lines.append(f"external ip:  {shown}")
    if d.get("candidate"):
        lines.append(f"confirming:   {', '.join(d['candidate'])}")
    lines.append(f"K3s config:   {d.get('k3s_config')}")
    lines.append(f"K3s unit:     {d.get('k3s_state') or d.get('k3s_unit')}")
    ch = d.get("last_change")
    if ch:
        before = ", ".join(ch.get("from") or []) or "none"
        after = ", ".join(ch.get("to") or []) or "none"
        lines.append(f"last change:  {_when(ch.get('time'))}: {before} -> {after}")
    rs = d.get("last_restart")
    if rs:
        lines.append(
            f"last restart: {_when(rs.get('time'))}: {rs.get('outcome')} ({rs.get('detail')})"
        )
    elif d.get("restart_pending"):
        lines.append("last restart: pending")
    reg = d.get("registration")
    if reg:
        shown = ", ".join(reg.get("published") or []) or "nothing"
        lines.append(f"registration: {reg.get('name')} at {reg.get('server')}: {shown}")
        last = reg.get("last_update")
        if last:
            outcome = "ok" if last.get("ok") else "failed"
            lines.append(
                f"  last update {_when(last.get('time'))}: {outcome}: {last.get('detail')}"
            )
    for c in h.get("checks") or []:
        lines.append(f"  {c.get('state', '?'):8} {c.get('check')}: {c.get('detail')}")
    peers = d.get("peers") or []
    if peers:
        lines.append("peers:")
    for p in peers:
        if "online" in p:
            state = "online" if p["online"] else "offline"
        elif "handshake_age" in p:
            state = f"handshake {p['handshake_age']:.0f}s ago" + (", stale" if p["stale"] else "")
        else:
            state = "no handshake" + (", stale" if p["stale"] else "")
        name = p.get("name") or p.get("peer", "")[:12]
        lines.append(f"  {p.get('interface')} {name} {p.get('endpoint') or '-'}: {state}")
    return "\n".join(lines)
