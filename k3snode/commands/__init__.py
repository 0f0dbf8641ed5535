"""One module per subcommand: ``add_arguments(parser)`` (optional) and ``run(args) -> int``;
this package's own module holds what several share: the flags that override a setting.

The CLI imports only the module of the command being run; a command module may import at its top
whatever that command needs (the heavy libraries — pyroute2, prometheus-client, PyYAML — stay
inside functions). A command that reads settings calls ``k3snode.cli_settings.load_settings``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from k3snode.errors import UsageError
from k3snode.record import record

__all__ = ["DISCOVERY_FLAGS", "NODE_FLAGS", "SETTING_FLAGS", "SettingFlag", "UsageError"]

# Setting flags that several commands share, in the order their help lists them.
NODE_FLAGS = ("role", "mesh", "server", "token-file", "node-name", "cluster-init", "k3s-config")
DISCOVERY_FLAGS = ("external-ip", "provider", "metadata-endpoint", "dmi-dir", "echo")


@record
class SettingFlag:
    """A flag that overrides one setting (flags > environment > file > defaults)."""

    flag: str
    section: str
    key: str
    help: str
    kwargs: Mapping[str, Any] = MappingProxyType({})  # argparse's keyword arguments

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")


def _port(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number (got {text!r})") from None


_ON = {"action": "store_const", "const": True, "default": None}

SETTING_FLAGS: dict[str, SettingFlag] = {f.dest: f for f in (
    SettingFlag("--role", "node", "role",
                "server or agent (default: agent when a server URL is set, else server)",
                {"metavar": "ROLE"}),
    SettingFlag("--mesh", "node", "mesh",
                "how nodes in different networks reach each other: wireguard-native (default), "
                "tailscale or none", {"metavar": "MESH"}),
    SettingFlag("--server", "k3s", "server",
                "https://host:port of an existing server to join (agents, joining servers)",
                {"metavar": "URL"}),
    SettingFlag("--token-file", "k3s", "token_file",
                "file holding the cluster token (K3s reads it as token-file)", {"metavar": "PATH"}),
    SettingFlag("--node-name", "k3s", "node_name",
                "K3s's node-name for this node (default: the host name)", {"metavar": "NAME"}),
    SettingFlag("--cluster-init", "k3s", "cluster_init",
                "this is the first server of an embedded-etcd cluster (writes cluster-init)", _ON),
    SettingFlag("--external-ip", "discovery", "external_ips",
                "static external address, repeat for IPv4 and IPv6; a family given here is not "
                "discovered", {"metavar": "ADDR", "action": "append"}),
    SettingFlag("--k3s-config", "k3s", "config",
                "K3s config file or config.yaml.d/NN-name.yaml drop-in to write "
                "(default: /etc/rancher/k3s/config.yaml)", {"metavar": "PATH"}),
    SettingFlag("--k3s-unit", "k3s", "unit",
                "K3s's systemd unit (default: k3s for servers, k3s-agent for agents)",
                {"metavar": "UNIT"}),
    SettingFlag("--provider", "discovery", "provider",
                "cloud whose metadata service to ask: auto (recognised from DMI, the default), "
                "none, or a provider id such as aws, gcp, azure, hetzner", {"metavar": "ID"}),
    SettingFlag("--metadata-endpoint", "discovery", "metadata_endpoint",
                "replace the metadata service's scheme, host and port (tests, proxies)",
                {"metavar": "URL"}),
    SettingFlag("--dmi-dir", "discovery", "dmi_dir",
                "read DMI fields from DIR instead of /sys/class/dmi/id", {"metavar": "DIR"}),
    SettingFlag("--echo", "discovery", "echo",
                "allow HTTPS echo services as a last resort when nothing else finds a public "
                "address", _ON),
    SettingFlag("--state-dir", "paths", "state_dir",
                "k3snode's state directory (default: /var/lib/k3snode)", {"metavar": "DIR"}),
    SettingFlag("--run-dir", "paths", "run_dir",
                "directory of the daemon's status file (default: /run/k3snode)",
                {"metavar": "DIR"}),
    SettingFlag("--health-port", "health", "port",
                "port of the local /healthz and /metrics endpoint (default 9181; 0: off)",
                {"metavar": "PORT", "type": _port}),
)}  # fmt: skip
