"""sd_notify to a real datagram socket, path and abstract forms."""

from __future__ import annotations

import os
import socket

import pytest

from k3snode.systemd import Notifier


@pytest.fixture(params=["path", "abstract"])
def listener(request, tmp_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        address = str(tmp_path / "notify.sock")
        s.bind(address)
    else:
        name = f"k3snode-test-{os.getpid()}-{id(s)}"
        s.bind("\0" + name)
        address = "@" + name
    s.settimeout(2)
    yield address, s
    s.close()


def test_messages_arrive_in_order(listener):
    address, s = listener
    n = Notifier({"NOTIFY_SOCKET": address})
    assert n.enabled
    n.ready("server, mesh none: 5.6.7.8 (interface)")
    n.status("same")
    n.status("same")  # unchanged: not sent again
    n.watchdog()
    n.reloading()
    n.reloaded("back")
    n.stopping()
    got = [s.recv(4096).decode() for _ in range(6)]
    assert got[0] == "READY=1\nSTATUS=server, mesh none: 5.6.7.8 (interface)"
    assert got[1] == "STATUS=same"
    assert got[2] == "WATCHDOG=1"
    assert got[3].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert got[4] == "READY=1\nSTATUS=back"
    assert got[5].startswith("STOPPING=1")
    s.settimeout(0.1)
    with pytest.raises(socket.timeout):
        s.recv(4096)


def test_without_notify_socket_nothing_is_sent():
    n = Notifier({})
    assert not n.enabled
    assert n.send("READY=1") is False
    assert n.watchdog_interval is None


def test_a_vanished_socket_never_raises(tmp_path):
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert n.send("READY=1") is False


def test_watchdog_interval_is_half_of_watchdog_usec():
    assert Notifier({"WATCHDOG_USEC": "10000000"}).watchdog_interval == 5.0
    mine = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(mine).watchdog_interval == 1.0
    other = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert Notifier(other).watchdog_interval is None
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_interval is None
    assert Notifier({"WATCHDOG_USEC": "soon"}).watchdog_interval is None


def test_a_reader_that_stopped_reading_never_blocks_the_sender(tmp_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(tmp_path / "full.sock"))
    try:
        n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "full.sock")})
        results = [n.send(f"STATUS=line {i}") for i in range(5000)]
        assert results[0] is True
        assert results[-1] is False, "the queue filled up and sending gave up instead of blocking"
    finally:
        s.close()
