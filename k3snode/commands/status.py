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

    settings = load_settings(args)
    path = settings.status_file
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


def _when(t: object) -> str:
    if not isinstance(t, (int, float)):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def describe(d: dict) -> str:
    h = d.get("health") or {}
    lines = [
        f"k3snode:      running (pid {d.get('pid')}, since {_when(d.get('started'))})",
        f"health:       {h.get('status', '?')}",
        f"role/mesh:    {d.get('role')}, {d.get('mesh')}",
    ]
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
