"""One module per subcommand: ``add_arguments(parser)`` (optional) and ``run(args) -> int``.

Keep module-level imports light; import what a command needs inside ``run``.
"""

# Setting flags that several commands share, in the order their help lists them.
NODE_FLAGS = ("role", "mesh", "server", "token-file", "node-name", "cluster-init", "k3s-config")
DISCOVERY_FLAGS = ("external-ip", "provider", "metadata-endpoint", "dmi-dir", "echo")
