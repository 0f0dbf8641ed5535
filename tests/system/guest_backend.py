"""In the guest, inside a namespace: the kernel backend on a fresh kernel WireGuard link."""

import json
import os

from k3snode.mesh.wg import keys, link
from k3snode.mesh.wg.link import open_backend
from k3snode.mesh.wg.types import PeerUpdate, Update

b = link.create_kernel("wgk")  # in the namespace the guest script runs this in (PYTHONPATH set)
assert open_backend("wgk").kind == "kernel"
k = keys.generate_private()
p1, p2, p3 = (keys.public_key(keys.generate_private()) for _ in range(3))
b.configure(
    Update(
        k,
        51830,
        peers=(
            PeerUpdate(p1, endpoint="192.0.2.9:1", allowed_ips=("10.1.0.1/32",)),
            PeerUpdate(
                p2,
                endpoint="[2001:db8::2]:2",
                keepalive=5,
                allowed_ips=("10.1.0.2/32", "fd00::2/128"),
            ),
        ),
    )
)
out = {}
dev = b.read()
out["first"] = {
    "public_key_ok": dev.public_key == keys.public_key(k),
    "port": dev.listen_port,
    "peers": sorted(
        [p.public_key == p1, p.endpoint, sorted(p.allowed_ips), p.keepalive] for p in dev.peers
    ),
}
b.configure(Update(peers=(PeerUpdate(p1, keepalive=7, allowed_ips=("10.1.0.11/32",)),)))
p = b.read().peer(p1)
out["changed"] = [p.keepalive, p.endpoint, list(p.allowed_ips), b.read().listen_port]
b.configure(Update(peers=(PeerUpdate(p1, remove=True),)))
out["removed"] = [q.public_key == p2 for q in b.read().peers]
b.configure(Update(replace_peers=True, peers=(PeerUpdate(p3, allowed_ips=("10.1.0.3/32",)),)))
out["replaced"] = [q.public_key == p3 for q in b.read().peers]

# the flannel observer on a kernel flannel-wg (what K3s's wireguard-native creates)
from k3snode.config.load import load  # noqa: E402
from k3snode.mesh.wg import health  # noqa: E402

fl = link.create_kernel("flannel-wg")
fl.configure(Update(k, 51820, peers=(PeerUpdate(p1, endpoint="192.0.2.2:51820", keepalive=25,
                                                allowed_ips=("10.42.1.0/24",)),)))  # fmt: skip
flannel = health.Flannel()  # as the daemon keeps it: one netlink socket across its calls
settings = load(None, env={"K3SNODE_MESH": "wireguard-native"})
obs = flannel(settings)
out["flannel"] = [[o.check, o.ok, o.facts.get("backend"), o.facts.get("peers")] for o in obs]


def sockets() -> int:
    """Open sockets of this process (the listing's own descriptor is gone when it is read)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except FileNotFoundError:
            continue
    return n


before = sockets()
for _ in range(5):
    flannel(settings)
out["flannel_sockets"] = [before, sockets()]
print(json.dumps(out))
