"""One module per subcommand: ``add_arguments(parser)`` (optional) and ``run(args) -> int``.

Keep module-level imports light; import what a command needs inside ``run``.
"""
