"""k3snode/logs.py: libraries kept quiet (real pyroute2, even at -v), their noise dropped and the
rest prefixed; conditions logged on their edges."""

from __future__ import annotations

import logging
import subprocess
import sys

from helpers import clean_env

from k3snode import logs

PYROUTE2_AT_V = """
import io, logging, sys
{setup}
from pyroute2 import IPRoute
socks = [IPRoute() for _ in range(3)]
for s in socks:
    s.get_links()
    s.close()
logging.getLogger("k3snode").debug("our own debug line")
"""


def _run(setup: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", PYROUTE2_AT_V.format(setup=setup)],
        capture_output=True, text=True, env=clean_env(), timeout=60, check=True,
    ).stderr  # fmt: skip


def test_real_pyroute2_says_nothing_at_v_and_our_debug_lines_stay():
    before = _run("logging.basicConfig(level=logging.DEBUG)")  # what k3snode did before
    assert "pyroute2" in before or "asyncio" in before  # the test can fail
    after = _run("from k3snode import logs; logs.setup(verbose=1)")
    assert after == "k3snode: our own debug line\n"


def _capture(verbose: int = 0):
    import io

    stream = io.StringIO()
    logs.setup(verbose, stream=stream)
    return stream


def _record(name: str, level: int, msg: str, pathname: str = "x.py", *args):
    return logging.LogRecord(name, level, pathname, 1, msg, args, None)


def test_library_noise_is_dropped_and_the_rest_is_prefixed():
    stream = _capture(verbose=1)
    root = logging.getLogger()
    try:
        lib = "/usr/lib/python3/dist-packages/pyroute2/netlink/generic/__init__.py"
        for rec in (
            _record("pyroute2.netlink.rtnl.tcmsg.common", logging.WARNING,
                    "tcmsg: %s", "c.py", "[Errno 2] No such file or directory: '/proc/net/psched'"),
            _record("pyroute2.netlink.rtnl.tcmsg.common", logging.WARNING,
                    "the tc subsystem functionality is limited"),
            _record("pyroute2.netlink.nlsocket", logging.DEBUG, "[Errno 98] Address already in use"),
            # some pyroute2 versions log through the root logger
            _record("root", logging.ERROR, "Generic netlink protocol wireguard not found", lib),
            _record("root", logging.ERROR, "Please check if the protocol module is loaded", lib),
            _record("urllib3.connectionpool", logging.INFO, "Starting new HTTPS connection"),
            _record("pyroute2.ndb", logging.WARNING, "something unexpected"),
            _record("k3snode.discovery", logging.DEBUG, "asked and answered"),
        ):  # fmt: skip
            root.handle(rec)
    finally:
        logs.setup(0)
    assert stream.getvalue() == (
        "k3snode: pyroute2: something unexpected\nk3snode: asked and answered\n"
    )


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_a_condition_is_logged_when_it_starts_and_ends_and_repeats_are_counted():
    stream = _capture()
    clock = Clock()
    c = logs.Conditions(logging.getLogger("k3snode.test"), clock)
    try:
        for _ in range(5):
            c.bad("k3s", "k3s: k3s.service is not installed")
            clock.t += 10
        c.bad("k3s", "k3s: k3s.service is failed (failed)")  # says something new
        assert c.good("k3s", "k3s: ok again") is True
        assert c.good("k3s") is False  # ended once
    finally:
        logs.setup(0)
    assert stream.getvalue().splitlines() == [
        "k3snode: k3s: k3s.service is not installed",
        "k3snode: k3s: k3s.service is failed (failed)",
        "k3snode: k3s: ok again (after 50 s, seen 6 times)",
    ]


def test_what_a_component_already_explained_is_not_said_again():
    stream = _capture()
    c = logs.Conditions(logging.getLogger("k3snode.test"))
    try:
        logs.said("this kernel has no WireGuard module (Linux x)")
        c.bad(
            "check:wg", "flannel-wg does not exist (this kernel has no WireGuard module (Linux x))"
        )
    finally:
        logs.setup(0)
        logs._said.clear()
    assert stream.getvalue() == ""
