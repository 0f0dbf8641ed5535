"""The userspace backend against a UAPI socket that answers garbage (a real socket server)."""

from __future__ import annotations

import socket
import threading

import pytest

from k3snode.mesh.wg import keys
from k3snode.mesh.wg.types import WireGuardError
from k3snode.mesh.wg.userspace import Userspace

PEER = keys.public_key(keys.generate_private())


def serve(tmp_path, ifname: str, answer: bytes) -> threading.Thread:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(tmp_path / f"{ifname}.sock"))
    srv.listen(1)

    def run() -> None:
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(answer)
        conn.close()
        srv.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_a_good_answer(tmp_path):
    priv = keys.generate_private()
    answer = (
        f"private_key={keys.decode(priv.reveal()).hex()}\nlisten_port=51822\n"
        f"public_key={keys.decode(PEER).hex()}\nendpoint=[2001:db8::1]:51822\n"
        "last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=500000000\n"
        "rx_bytes=10\ntx_bytes=20\npersistent_keepalive_interval=25\n"
        "allowed_ip=10.99.0.2/32\nallowed_ip=fd00::2/128\nprotocol_version=1\nerrno=0\n\n"
    ).encode()
    serve(tmp_path, "wgok", answer)
    dev = Userspace("wgok", str(tmp_path)).read()
    assert dev.public_key == keys.public_key(priv) and dev.listen_port == 51822
    (p,) = dev.peers
    assert (p.public_key, p.endpoint, p.last_handshake, p.rx_bytes, p.tx_bytes, p.keepalive) == (
        PEER, "[2001:db8::1]:51822", 1700000000.5, 10, 20, 25)  # fmt: skip
    assert p.allowed_ips == ("10.99.0.2/32", "fd00::2/128")


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (f"public_key={'ab' * 32}\nrx_bytes=lots\nerrno=0\n\n", "bad value for rx_bytes"),
        ("public_key=zz\nerrno=0\n\n", "bad value for public_key"),
        ("private_key=SECRETSECRET\nerrno=0\n\n", "bad value for private_key"),
        ("listen_port=51822\n", "incomplete answer"),  # no errno: cut off
        ("errno=-22\n\n", "refused (errno=-22)"),
        ("", "incomplete answer"),
    ],
)
def test_garbage_is_one_error_that_never_shows_a_key(tmp_path, answer, why):
    serve(tmp_path, "wgbad", answer.encode())
    with pytest.raises(WireGuardError) as e:
        Userspace("wgbad", str(tmp_path)).read()
    assert why in str(e.value)
    assert "SECRET" not in str(e.value)
