"""The server underlay: a WireGuard network among servers (optionally agents) that k3snode keeps
configured, so embedded etcd can span clouds on private addresses that follow the servers.

- ``plan``: what the settings want (peers without this node, host routes), pure.
- ``keeper``: one long-lived object that makes the interface match, pass after pass.
- ``checks``: the health check (judges what the keeper's last pass saw) and the preflight.
"""
