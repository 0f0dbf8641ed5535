"""Does this kernel have WireGuard, are flannel's UDP ports free? ``k3snode check`` for mesh
wireguard-native (the daemon runs it at start), and the daemon's ``KernelCheck`` behind the flannel
observer.

The kernel is asked in this process, without forking (the daemon has threads; a child forked while
one of them holds a lock can hang on it): WireGuard is there when its module is loaded or built in
(``wireguard`` in ``/sys/module``), else when a link of kind ``wireguard`` can be created — which
also makes the kernel load an installed module — and it is deleted again at once. Creating a link
needs only ``CAP_NET_ADMIN``, which the hardened unit keeps; no network namespace is needed, so
``RestrictNamespaces=yes`` does not get in the way. The link is made with the stdlib rtnetlink
codec (``k3snode/netlink.py``), not pyroute2: the daemon asks while flannel-wg is missing, and
pyroute2 costs ~12 MiB of RSS and hundreds of milliseconds of import. ``/sys/module`` is listed
rather than its entry stat-ed: an unloaded module is then no failing syscall.
"""

from __future__ import annotations

import errno
import logging
import os
import platform
import time
from typing import TYPE_CHECKING, Callable

from k3snode import logs, netlink
from k3snode.health.checks import Finding

if TYPE_CHECKING:
    from k3snode.config.model import Settings

log = logging.getLogger(__name__)

FLANNEL_PORTS = {51820: "flannel-wg", 51821: "flannel-wg-v6"}
KERNEL_RECHECK = 600.0  # seconds between KernelCheck's answers: someone may install the module


def kernel_wireguard(root: str = "/") -> tuple[bool | None, str]:
    """(True, how) when the kernel has WireGuard now; (False, why) when creating a WireGuard link
    fails; (None, why) when this process may not try (no ``CAP_NET_ADMIN``). ``root``: where
    ``/sys`` is found (tests)."""
    if loaded(root):
        return True, "the wireguard module is loaded or built in"
    return _create_link()


def loaded(root: str = "/") -> bool:
    """The wireguard module is loaded or built in (an entry in ``/sys/module``)."""
    try:
        return "wireguard" in os.listdir(os.path.join(root, "sys/module"))
    except OSError:
        return False


def _create_link() -> tuple[bool | None, str]:
    """Create a wireguard link under a name no one else uses, and delete it again."""
    name = f"k3snode-p{os.urandom(3).hex()}"  # 15 characters: IFNAMSIZ - 1
    try:
        netlink.create_link(name, "wireguard")
    except netlink.Refused as e:
        if e.errno == errno.EPERM:
            return None, "creating a wireguard link needs CAP_NET_ADMIN"
        return False, f"creating a wireguard link: {os.strerror(e.errno)}"
    except OSError as e:  # the netlink socket itself (RestrictAddressFamilies without AF_NETLINK)
        return None, f"cannot open a netlink socket ({e.strerror or e})"
    try:
        netlink.delete_link(name)
    except OSError as e:
        log.warning("could not delete the probe link %s: %s", name, e)
    return True, "a wireguard link can be created"


def module_installed(release: str | None = None, root: str = "/") -> bool:
    """The wireguard module is built in or installed for the running kernel (may be unloaded)."""
    release = release or os.uname().release
    base = os.path.join(root, "lib/modules", release)
    if loaded(root):
        return True
    for name in ("modules.builtin", "modules.dep"):
        try:
            with open(os.path.join(base, name), encoding="utf-8", errors="replace") as f:
                if any("/wireguard.ko" in line for line in f):
                    return True
        except OSError:
            continue
    return False


class KernelCheck:
    """Why wireguard-native cannot work on this node (no kernel WireGuard), or None — the daemon's
    answer when flannel-wg is missing. Kept by the flannel observer: asked at most every
    ``KERNEL_RECHECK`` seconds, cheapest evidence first (sysfs, the module files, then a link),
    and logged as an error once when it turns bad."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        probe: Callable[[], tuple[bool | None, str]] = kernel_wireguard,
        installed: Callable[[], bool] = module_installed,
    ) -> None:
        self._clock = clock
        self._probe = probe
        self._installed = installed
        self._last: tuple[float, str | None] | None = None  # (checked at, problem)

    def problem(self) -> str | None:
        now = self._clock()
        if self._last is not None and now - self._last[0] < KERNEL_RECHECK:
            return self._last[1]
        problem, fatal = self._judge()
        if fatal and (self._last is None or self._last[1] != problem):
            log.error("%s", problem)
            logs.said(problem)
        self._last = (now, problem)
        return problem

    def _judge(self) -> tuple[str | None, bool]:
        """(the problem or None, whether it is one wireguard-native cannot get over)."""
        if self._installed():
            if loaded():
                return None, False
            # Normal before K3s's first start: K3s loads it. Not an error, not logged by default.
            problem = "the wireguard module is not loaded yet; K3s loads it when it starts"
            log.debug("%s", problem)
            return problem, False
        ok, why = self._probe()
        if ok is not False:  # it works, or this process may not find out: nothing to say
            return None, False
        problem = (
            f"this kernel has no WireGuard module (Linux {os.uname().release}; {why}): K3s's "
            "wireguard-native backend cannot work on this node; install the module (modprobe "
            'wireguard must work) or set [node] mesh = "tailscale"'
        )
        return problem, True


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
        out.append(Finding("warning", "wireguard", f"could not check for kernel WireGuard: {why}"))
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
