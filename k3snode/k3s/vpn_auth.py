"""The one-line ``vpn-auth`` format K3s reads from ``vpn-auth-file``.

``name=tailscale,joinKey=<key>[,controlServerURL=<url>]``. K3s splits it on ``,`` and each item on
``=`` (``pkg/vpn/vpn.go``), so a key or URL containing either character cannot be expressed: such
values are refused here rather than producing a file K3s misreads.
"""

from __future__ import annotations


class VPNAuthError(ValueError):
    pass


def vpn_auth_line(join_key: str, control_server_url: str = "") -> str:
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
    return line + "\n"
