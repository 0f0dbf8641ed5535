"""What the operator sees while ``tailscale up`` waits: the state tailscaled reports, each said
once, with what to do about it (log in at the URL Tailscale gives, approve the machine)."""

from __future__ import annotations

import logging
import threading
from typing import Callable

from k3snode.mesh.tailscale.status import read_status
from k3snode.mesh.tailscale.types import Status, TailscaleError
from k3snode.secret import Secret

log = logging.getLogger(__name__)

ADMIN_MACHINES = "https://login.tailscale.com/admin/machines"


def advice(st: Status, control_url: str = "") -> str | None:
    """One line for a state the operator must act on, or None while it simply proceeds."""
    if st.backend_state == "NeedsMachineAuth":
        where = f"on {control_url}" if control_url else f"in the admin console ({ADMIN_MACHINES})"
        return (
            f"tailscale: waiting for this machine to be approved {where}; or use an auth key "
            "that is pre-approved"
        )
    if st.backend_state == "NeedsLogin" and st.auth_url:
        return (
            f"tailscale: waiting for a login: open {st.auth_url} (or set [tailscale] auth_key_file)"
        )
    return None


class Watch:
    """While ``tailscale up`` blocks: poll ``tailscale status`` every ``interval`` seconds in a
    thread and log each new piece of advice once."""

    def __init__(
        self,
        key: Secret | None,
        control_url: str = "",
        interval: float = 2.0,
        read: Callable[..., Status] | None = None,
    ) -> None:
        self._key = key
        self._control_url = control_url
        self._interval = interval
        self._read = read
        self._stop = threading.Event()
        self._said: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="k3snode-ts-watch", daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        read = self._read or read_status
        while not self._stop.wait(self._interval):
            try:
                st = read(secret=self._key)
            except (TailscaleError, OSError):
                continue
            line = advice(st, self._control_url)
            if line and line not in self._said and not self._stop.is_set():
                self._said.add(line)
                log.warning("%s", line)
