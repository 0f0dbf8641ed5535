"""The one-line ``vpn-auth`` format K3s reads from ``vpn-auth-file``.

``name=tailscale,joinKey=<key>[,controlServerURL=<url>][,extraArgs=<arg> <arg>…]``. K3s
(``pkg/vpn/vpn.go`` ``getVPNAuthInfo``/``processCLIArgs``, k3s-io/k3s 66a14f0e) first cuts the line
at ``,extraArgs=`` and splits what follows on whitespace (``strings.Fields``): those are appended
verbatim to its ``tailscale up``, so they may hold ``,`` and ``=`` but no whitespace, and the part
must come last. The rest is split on ``,`` and each item on ``=``, so a key or URL containing
either character cannot be expressed. Such values are refused here rather than producing a file K3s
misreads.
"""

from __future__ import annotations

from collections.abc import Sequence


class VPNAuthError(ValueError):
    pass


def extra_args_problem(args: Sequence[str]) -> str | None:
    """Why ``args`` cannot travel in ``extraArgs`` (None when they can)."""
    for a in args:
        if not a or any(c.isspace() for c in a):
            return f"{a!r} is empty or holds whitespace, which K3s splits extraArgs on"
        if ",extraArgs=" in a:
            return f"{a!r} holds ',extraArgs=', where K3s cuts the vpn-auth line"
    return None


def vpn_auth_line(
    join_key: str, control_server_url: str = "", extra_args: Sequence[str] = ()
) -> str:
    """The file's content (with a trailing newline; K3s trims whitespace)."""
    key = join_key.strip()
    if not key:
        raise VPNAuthError("the auth key is empty")
    for what, value in (("auth key", key), ("control server URL", control_server_url)):
        if any(c in value for c in ",=") or any(c.isspace() for c in value):
            bad = sorted({c for c in value if c in ",=" or c.isspace()})
            raise VPNAuthError(
                f"the {what} contains {' and '.join(map(repr, bad))}, which K3s's "
                "vpn-auth format cannot carry"
            )
    line = f"name=tailscale,joinKey={key}"
    if control_server_url:
        line += f",controlServerURL={control_server_url}"
    if extra_args:
        problem = extra_args_problem(extra_args)
        if problem:
            raise VPNAuthError(f"the extra argument {problem}")
        line += ",extraArgs=" + " ".join(extra_args)
    return line + "\n"
