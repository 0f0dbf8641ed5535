"""k3snode/mesh/tailscale/progress.py: what the operator is told while `tailscale up` waits, from
`tailscale status --json` documents as Tailscale writes them (ipnstate.Status)."""

from __future__ import annotations

from k3snode.mesh.tailscale.progress import advice
from k3snode.mesh.tailscale.status import parse_status


def _status(state: str, auth_url: str = ""):
    return parse_status({"BackendState": state, "AuthURL": auth_url, "Self": {}, "Health": []})


def test_needs_login_points_at_the_login_url():
    st = _status("NeedsLogin", "https://login.tailscale.com/a/0123456789ab")
    assert advice(st) == (
        "tailscale: waiting for a login: open https://login.tailscale.com/a/0123456789ab "
        "(or set [tailscale] auth_key_file)"
    )


def test_needs_machine_auth_says_where_to_approve():
    assert "in the admin console (https://login.tailscale.com/admin/machines)" in advice(
        _status("NeedsMachineAuth")
    )
    assert "on https://headscale.example.com" in advice(
        _status("NeedsMachineAuth"), "https://headscale.example.com"
    )


def test_states_that_simply_proceed_say_nothing():
    for state in ("Starting", "Running", "NoState", "NeedsLogin"):
        assert advice(_status(state)) is None
