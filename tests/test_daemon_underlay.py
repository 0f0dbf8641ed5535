"""``k3snode run`` with the server underlay on: the underlay is up before READY (K3s's first start
finds its node-ip), and its peers reach ``k3snode status`` and ``/metrics``. The peer is a real
wireguard-go in the router namespace, configured through k3snode's userspace backend."""

from __future__ import annotations

import contextlib
import os

import pytest
import yaml
from daemon_node import make_node
from helpers import unique_name, wait_for
from wgtest import need_wireguard_go, ping_within, wireguard_go

from k3snode.mesh.wg import keys
from k3snode.mesh.wg.types import PeerUpdate, Update
from k3snode.mesh.wg.userspace import Userspace

pytestmark = pytest.mark.netns


def test_underlay_up_before_ready_and_peers_reported(tmp_path):
    need_wireguard_go()
    ul = unique_name("ul")
    key_file = tmp_path / "underlay.key"
    node_pub = keys.public_key(keys.load_or_create(str(key_file))[0])
    router_priv = keys.generate_private()
    router_pub = keys.public_key(router_priv)
    extra = f"""
[underlay]
enabled = true
interface = "{ul}"
address = "10.99.0.1/24"
listen_port = 51822
private_key_file = "{key_file}"
keepalive = 1
userspace = "always"

[[underlay.peers]]
name = "router"
public_key = "{router_pub}"
endpoint = "5.6.7.1:51822"
address = "10.99.0.2"
"""
    with make_node(tmp_path, health_port=-1, grace=2.0, extra_toml=extra) as node:
        node.router.ip("addr", "add", "5.6.7.1/24", "dev", node.peer)
        with wireguard_go(node.router) as rif:
            Userspace(rif).configure(
                Update(
                    private_key=router_priv,
                    listen_port=51822,
                    peers=(
                        PeerUpdate(
                            node_pub, endpoint="5.6.7.8:51822", allowed_ips=("10.99.0.1/32",)
                        ),
                    ),
                )
            )
            node.router.ip("addr", "add", "10.99.0.2/24", "dev", rif)
            node.router.ip("link", "set", rif, "up")
            try:
                node.start(wait_ready=False)
                node.notify.wait("READY=1", timeout=30)
                # at READY the interface carries the address K3s is told to use as node-ip
                assert "10.99.0.1/24" in node.ns.ip("addr", "show", "dev", ul).stdout
                cfg = yaml.safe_load(node.read_config())
                assert cfg["node-ip"] == ["10.99.0.1"]
                assert cfg["node-external-ip"] == ["5.6.7.8"]
                assert ping_within(node.router, "10.99.0.1"), node.output()

                def handshake_seen():
                    peers = node.status_json().get("peers") or []
                    return [p for p in peers if p["name"] == "router" and "handshake_age" in p]

                (row,) = wait_for(handshake_seen, timeout=20, what="peer in status")
                assert row["interface"] == ul and row["peer"] == router_pub
                assert row["stale"] is False and row["handshake_age"] < 30
                text = node.status().stdout
                assert "peers:" in text and f"{ul} router 5.6.7.1:51822: handshake" in text
                code, metrics = node.http("/metrics")
                assert code == 200
                line = next(
                    ln
                    for ln in metrics.splitlines()
                    if ln.startswith("k3snode_wireguard_peer_handshake_age_seconds{")
                )
                assert f'interface="{ul}"' in line and 'name="router"' in line
                assert 0 <= float(line.rsplit(" ", 1)[1]) < 30
                assert "k3snode_wireguard_peer_stale{" in metrics
                assert key_file.read_text().strip() not in node.output()  # the private key never
            finally:
                node.stop()
                node.ns.ip("link", "del", ul, check=False)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"/var/run/wireguard/{ul}.sock")
