"""The tailnet policy snippet K3s's Tailscale integration needs (``k3snode tailscale-policy``).

K3s's docs (``networking/distributed-multicloud.md``) ask for the cluster's pod CIDR(s) under
``autoApprovers.routes`` — each node advertises its pod subnet with ``tailscale set
--advertise-routes`` and nobody should have to approve it by hand — and, for tailnets that restrict
traffic, ACLs that let the nodes and the pods reach each other. Nodes are identified by their tag;
``tagOwners`` declares it so the policy is valid on its own.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from k3snode.config.model import Settings


def policy(settings: Settings) -> dict[str, Any]:
    """``tagOwners``, ``autoApprovers`` and ``acls`` for the node tag and pod CIDR(s)."""
    ts = settings.tailscale
    tag, cidrs = ts.tag, list(ts.pod_cidrs)
    members = [tag, *cidrs]
    return {
        "tagOwners": {tag: ["autogroup:admin"]},
        "autoApprovers": {"routes": {cidr: [tag] for cidr in cidrs}},
        "acls": [
            {
                "action": "accept",
                "src": members,
                "dst": [f"{m}:*" for m in members],
            }
        ],
    }


def render(settings: Settings) -> str:
    """The snippet as HuJSON (plain JSON with comments stripped is valid HuJSON and JSON)."""
    ts = settings.tailscale
    head = (
        f"// K3s over Tailscale: merge into your tailnet policy file (Access controls).\n"
        f"// Nodes join with an auth key tagged {ts.tag}; pod CIDR(s) {', '.join(ts.pod_cidrs)}.\n"
        "// Several clusters on one tailnet need distinct pod CIDRs.\n"
    )
    return head + json.dumps(policy(settings), indent=2) + "\n"
