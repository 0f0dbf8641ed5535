"""Settings files for underlay tests: keys, a config with peers (the shape every server shares)."""

from __future__ import annotations

import json

from k3snode.mesh.wg import keys

KEYS = [keys.generate_private() for _ in range(3)]
PUBS = [keys.public_key(k) for k in KEYS]


def underlay_toml(root, address="10.99.0.1/24", peers=(), extra="") -> str:
    """Write ``ROOT/etc/k3snode/config.toml`` with the underlay on; return its path."""
    path = root / "etc/k3snode/config.toml"
    text = f"""\
[paths]
state_dir = "{root}/var/lib/k3snode"
run_dir = "{root}/run/k3snode"

[underlay]
enabled = true
address = "{address}"
private_key_file = "{root}/var/lib/k3snode/underlay.key"
keepalive = 20
{extra}
"""
    for p in peers:
        text += "\n[[underlay.peers]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in p.items())
    path.write_text(text)
    return str(path)


def peer_entry(i, **kw):
    """The i-th server's [[underlay.peers]] entry (key PUBS[i], name s<i+1>.example.net)."""
    return {"public_key": PUBS[i], "endpoint": f"s{i + 1}.example.net:51822",
            "address": f"10.99.0.{i + 1}", **kw}  # fmt: skip
