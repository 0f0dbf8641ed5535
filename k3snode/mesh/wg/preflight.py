"""``k3snode check`` for mesh wireguard-native: does this kernel have WireGuard, are flannel's
UDP ports free?

The kernel is asked for real: a child process enters a fresh network namespace (so nothing on the
host is touched, and the namespace vanishes with the child) and creates a ``wireguard`` link there
through pyroute2, which also makes the kernel load the module.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from typing import TYPE_CHECKING

from k3snode.health.checks import Finding

if TYPE_CHECKING:
    from k3snode.config.model import Settings

CLONE_NEWNET = 0x40000000
FLANNEL_PORTS = {51820: "flannel-wg", 51821: "flannel-wg-v6"}


def kernel_wireguard() -> tuple[bool | None, str]:
    """(True, "") when the kernel can create a WireGuard link; (False, why) when it cannot;
    (None, why) when this process cannot find out (not root)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        code, msg = 0, ""
        try:
            os.close(r)
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                code, msg = 3, f"cannot create a network namespace ({os.strerror(e)})"
            else:
                from pyroute2 import IPRoute

                with IPRoute() as ipr:
                    ipr.link("add", ifname="k3snode-probe", kind="wireguard")
        except Exception as e:  # report anything to the parent, then exit
            err = getattr(e, "code", None)
            code = 4 if err == errno.EPERM else 1
            if not msg:
                why = os.strerror(err) if isinstance(err, int) else str(e)
                msg = f"creating a wireguard link: {why}"
        finally:
            os.write(w, msg.encode()[:1000])
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        msg = f.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return True, ""
    if code in (3, 4):
        return None, msg
    return False, msg


def _inodes(port: int) -> set[int]:
    """Socket inodes bound to UDP ``port`` in this network namespace (IPv4 and IPv6)."""
    out = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if int(cols[1].rsplit(":", 1)[1], 16) == port:
                        out.add(int(cols[9]))
        except (OSError, IndexError, ValueError):
            continue
    return out


def udp_port_holders(port: int) -> list[str]:
    """Who holds UDP ``port``: "name (pid N)" per process; "the kernel" for kernel sockets
    (a WireGuard interface's socket has no owning process)."""
    inodes = _inodes(port)
    if not inodes:
        return []
    holders: list[str] = []
    if 0 in inodes:
        holders.append("the kernel (a WireGuard interface?)")
    wanted = {f"socket:[{i}]" for i in inodes if i}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in wanted for fd in fds):
                with open(f"/proc/{pid}/comm") as f:
                    holders.append(f"{f.read().strip()} (pid {pid})")
        except OSError:
            continue
    return holders or ["an unknown process"]


def wireguard_native(settings: Settings) -> list[Finding]:
    """The PREFLIGHTS entry (``k3snode check``; the daemon runs it at start)."""
    if settings.mesh != "wireguard-native":
        return []
    out = []
    ok, why = kernel_wireguard()
    if ok:
        out.append(Finding("ok", "wireguard", "the kernel has WireGuard (wireguard-native works)"))
    elif ok is None:
        out.append(
            Finding(
                "warning", "wireguard", f"could not check for kernel WireGuard: {why} (run as root)"
            )
        )
    else:
        out.append(
            Finding(
                "error",
                "wireguard",
                f"this kernel ({platform.release()}) has no WireGuard ({why}): K3s's "
                "wireguard-native flannel backend cannot work on this node. Install the "
                "WireGuard kernel module (built into Linux 5.6 and later; on older kernels the "
                "distribution's wireguard/kmod-wireguard package), or set [node] mesh = "
                '"tailscale".',
            )
        )
    for port, ifname in FLANNEL_PORTS.items():
        holders = udp_port_holders(port)
        if not holders:
            continue
        if os.path.exists(f"/sys/class/net/{ifname}"):
            out.append(
                Finding("ok", "wireguard", f"UDP {port} is held by {ifname} (K3s's flannel)")
            )
            continue
        out.append(
            Finding(
                "warning",
                "wireguard",
                f"UDP {port} ({ifname}'s port) is already held by {', '.join(holders)}: "
                "flannel's WireGuard will fail to start",
            )
        )
    return out
