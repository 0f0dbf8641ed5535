"""The WireGuard interface itself: which backend serves it, create it (kernel link or
wireguard-go), its addresses and routes. What is there is read with the stdlib rtnetlink reader
(``k3snode/netlink.py``) and sysfs, so a pass that changes nothing — the daemon's every 30 s — never
loads pyroute2 or opens its sockets; pyroute2's rtnetlink (a wireguard-go interface is a ``tun``
link to it) only makes changes, with pyroute2's names for the kernel's numbers.

The read path compares with the same numbers under the kernel's names (below): importing them from
pyroute2 would load all of pyroute2 (about 140 ms) on every pass; ``tests/mesh/test_wg_link.py``
checks that they equal pyroute2's.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping

from k3snode import netlink, systemd
from k3snode.mesh.wg.kernel import Kernel
from k3snode.mesh.wg.types import (
    SOCKET_DIR,
    Backend,
    NoSuchDevice,
    WireGuardError,
    userspace_socket,
)
from k3snode.mesh.wg.userspace import Userspace

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0
# read path only (see the module docstring): pyroute2.netlink.rtnl.ifinfmsg.IFF_UP and
# pyroute2.netlink.rtnl.rt_proto["static"]
IFF_UP = 0x1
RTPROT_STATIC = 4  # routes k3snode adds; others' routes (kernel, boot, dhcp) are not its to judge


class KernelUnsupported(WireGuardError):
    """The kernel cannot create WireGuard links."""


def _netlink(what: str):
    """Decorator: netlink and OS errors become a WireGuardError saying what failed and why."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(ifname: str, *args, **kw):
            try:
                return fn(ifname, *args, **kw)
            except OSError as e:
                raise WireGuardError(f"{what} {ifname}: {e.strerror or e}") from None
            except Exception as e:  # pyroute2's NetlinkError, without importing pyroute2 to see
                if type(e).__name__ != "NetlinkError" or not isinstance(getattr(e, "code", 0), int):
                    raise
                raise WireGuardError(f"{what} {ifname}: {os.strerror(e.code)}") from None

        return inner

    return wrap


def exists(ifname: str) -> bool:
    return os.path.exists(f"/sys/class/net/{ifname}")


def open_backend(ifname: str, socket_dir: str = SOCKET_DIR) -> Backend:
    """The userspace backend when ``ifname`` has a UAPI socket, else the kernel backend."""
    if os.path.exists(userspace_socket(ifname, socket_dir)):
        return Userspace(ifname, socket_dir)
    return Kernel(ifname)


def existing_backend(ifname: str, socket_dir: str = SOCKET_DIR) -> Backend | None:
    """The backend serving an existing WireGuard interface, or None when there is none.

    Raises WireGuardError when ``ifname`` exists but is not WireGuard.
    """
    if os.path.exists(userspace_socket(ifname, socket_dir)):
        u = Userspace(ifname, socket_dir)
        try:
            u.read()
            return u
        except NoSuchDevice:
            pass  # a socket left by a killed wireguard-go
    if not exists(ifname):
        return None
    k = Kernel(ifname)
    try:
        k.read()
    except NoSuchDevice:
        k.close()
        raise WireGuardError(f"{ifname} exists but is not a WireGuard interface") from None
    except WireGuardError:
        k.close()
        raise
    return k  # its socket stays open for the caller's next reads


def create_kernel(ifname: str) -> Backend:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        with IPRoute() as ipr:
            ipr.link("add", ifname=ifname, kind="wireguard")
    except NetlinkError as e:
        if e.code in (errno.EOPNOTSUPP, errno.ENOENT, errno.EINVAL):
            raise KernelUnsupported(
                f"the kernel has no WireGuard ({os.strerror(e.code)})"
            ) from None
        raise WireGuardError(f"creating {ifname}: {os.strerror(e.code)}") from None
    return Kernel(ifname)


UNIT_TEMPLATE = "k3snode-wireguard-go@.service"
UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)


def userspace_unit(
    ifname: str,
    env: Mapping[str, str] | None = None,
    booted: str = systemd.BOOTED,
    unit_dirs: tuple[str, ...] = UNIT_DIRS,
) -> str | None:
    """The systemd unit to run wireguard-go for ``ifname`` in, or None to start it directly.

    A unit when k3snode runs as a systemd service (``INVOCATION_ID`` set, systemd booted) and
    the packages' template unit is installed: wireguard-go started by k3snode itself would live
    in k3snode's cgroup and die with every stop, restart or upgrade of k3snode."""
    if not systemd.in_unit(env, booted):
        return None
    if not any(os.path.exists(os.path.join(d, UNIT_TEMPLATE)) for d in unit_dirs):
        log.warning(
            "%s is not installed: wireguard-go for %s runs in k3snode's own cgroup and stops "
            "with k3snode",
            UNIT_TEMPLATE,
            ifname,
        )
        return None
    return UNIT_TEMPLATE.replace("@.", f"@{ifname}.")


def _start_unit(unit: str, systemctl: str) -> None:
    """``systemctl start UNIT``: idempotent, so never a second wireguard-go for one interface."""
    try:
        r = systemd.systemctl(["start", unit], binary=systemctl)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise WireGuardError(f"systemctl start {unit}: {e}") from None
    if r.returncode != 0:
        why = r.stderr.strip().splitlines()
        raise WireGuardError(f"systemctl start {unit} failed: {why[-1] if why else r.returncode}")


def start_userspace(
    ifname: str,
    binary: str = "wireguard-go",
    socket_dir: str = SOCKET_DIR,
    unit: str | None = "auto",
    systemctl: str = "systemctl",
) -> Backend:
    """Start wireguard-go for ``ifname`` and wait for its UAPI socket.

    ``unit``: the systemd unit to start it in (``systemctl start``; its ``ExecStart`` names the
    program), None to run ``BINARY IFNAME`` directly (it daemonizes and outlives this process,
    though not this process's cgroup), "auto" for ``userspace_unit``."""
    if unit == "auto":
        unit = userspace_unit(ifname)
    if unit is not None:
        _start_unit(unit, systemctl)
        log.info("underlay: started %s", unit)
        return _wait_for_socket(ifname, socket_dir, f"{unit} (journalctl -u {unit})")
    path = shutil.which(binary)
    if not path:
        raise WireGuardError(f"{binary} is not installed (needed for a userspace WireGuard)")
    env = {k: v for k, v in os.environ.items() if k != "WG_PROCESS_FOREGROUND"}
    env["LOG_LEVEL"] = "error"
    # the daemonized child keeps stderr open: a file, not a pipe, or we would wait for it forever
    with tempfile.TemporaryFile() as err:
        try:
            r = subprocess.run(
                [path, ifname],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                timeout=START_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise WireGuardError(
                f"{binary} {ifname} did not start in {START_TIMEOUT:.0f}s"
            ) from None
        if r.returncode != 0:
            err.seek(0)
            why = err.read().decode(errors="replace").strip().splitlines()
            raise WireGuardError(f"{binary} {ifname} failed: {why[-1] if why else r.returncode}")
    return _wait_for_socket(ifname, socket_dir, f"{binary} {ifname}")


def _wait_for_socket(ifname: str, socket_dir: str, what: str) -> Backend:
    u = Userspace(ifname, socket_dir)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            u.read()
            return u
        except NoSuchDevice:
            if time.monotonic() > deadline:
                raise WireGuardError(f"{what} started but its socket never answered") from None
            time.sleep(0.05)


def _link(ifname: str):
    """The rtnetlink link named ``ifname`` in this network namespace (index, flags)."""
    for link in netlink.links():
        if link.name == ifname:
            return link
    raise NoSuchDevice(f"{ifname} does not exist")


def _index(ifname: str) -> int:
    return _link(ifname).index


def _global_addresses(idx: int | None = None):
    """(index, address, prefixlen) of every global (scope 0) address, IPv4 then IPv6."""
    for family in (socket.AF_INET, socket.AF_INET6):
        for a in netlink.addresses(family):
            if a.scope == 0 and a.address and (idx is None or a.index == idx):
                yield a.index, a.address, a.prefixlen


@_netlink("bringing up")
def ensure_up(ifname: str) -> bool:
    """Bring the link up; True when it was down."""
    link = _link(ifname)
    if link.flags & IFF_UP:
        return False
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("set", index=link.index, state="up")
    return True


@_netlink("setting the addresses of")
def ensure_addresses(ifname: str, wanted: list[str]) -> list[str]:
    """Make ``wanted`` (addresses with prefix) the interface's only global addresses.
    Returns what changed, as "+addr" / "-addr"."""
    want = {ipaddress.ip_interface(a) for a in wanted}
    changes: list[str] = []
    idx = _index(ifname)
    # link-local and host addresses are not ours to judge
    have = {ipaddress.ip_interface(f"{a}/{n}") for _i, a, n in _global_addresses(idx)}
    if have == want:
        return changes
    from pyroute2 import IPRoute
    from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD

    with IPRoute() as ipr:
        # add before removing: a device left without IPv4 address loses its IPv4 routes
        for a in sorted(want - have, key=str):
            kw = {"flags": IFA_F_NODAD} if a.version == 6 else {}  # no DAD: usable at once
            ipr.addr("add", index=idx, address=str(a.ip), prefixlen=a.network.prefixlen, **kw)
            changes.append(f"+{a}")
        for a in sorted(have - want, key=str):
            ipr.addr("del", index=idx, address=str(a.ip), prefixlen=a.network.prefixlen)
            changes.append(f"-{a}")
    return changes


@_netlink("setting the routes via")
def ensure_host_routes(ifname: str, wanted: list[str]) -> list[str]:
    """Host routes (/32, /128) via ``ifname`` for exactly ``wanted`` (peer addresses outside the
    interface's own prefix). Returns "+dst" / "-dst"."""
    want = {ipaddress.ip_network(w) for w in wanted}
    changes: list[str] = []
    idx = _index(ifname)
    have = set()
    for family in (socket.AF_INET, socket.AF_INET6):
        full = 32 if family == socket.AF_INET else 128
        for r in netlink.routes(family):
            if idx in r.oifs and r.dst and r.dst_len == full and r.proto == RTPROT_STATIC:
                have.add(ipaddress.ip_network(f"{r.dst}/{full}"))
    if have == want:
        return changes
    from pyroute2 import IPRoute
    from pyroute2.netlink.rtnl import rt_proto, rt_scope

    static, link = rt_proto["static"], rt_scope["link"]
    with IPRoute() as ipr:
        for n in sorted(have - want, key=str):
            ipr.route("del", dst=str(n), oif=idx, proto=static, scope=link)
            changes.append(f"-{n}")
        for n in sorted(want - have, key=str):
            ipr.route("replace", dst=str(n), oif=idx, proto=static, scope=link)
            changes.append(f"+{n}")
    return changes


def existing_backend_quiet(ifname: str, socket_dir: str = SOCKET_DIR) -> Backend | None:
    """``existing_backend`` for checks: None also when ``ifname`` is something else."""
    try:
        return existing_backend(ifname, socket_dir)
    except WireGuardError:
        return None


@_netlink("reading the addresses besides")
def local_addresses(exclude: str) -> frozenset[str]:
    """This namespace's global addresses, except those on ``exclude`` (the underlay itself)."""
    try:
        skip = _index(exclude)
    except NoSuchDevice:
        skip = None
    return frozenset(a for i, a, _n in _global_addresses() if i != skip)
