"""Which components report into the daemon's health.

Each observer takes the Settings and returns a list of ``checks.Observation``; it only reads (it
changes nothing on the node) and answers nothing for a component that is off. The daemon calls
every one each health interval; an observer that raises becomes a failing check named after it
(``name(observer)``). A new check: write its observer next to the code it watches, list it here.
The underlay is not listed: the daemon judges what its own keeper's last pass saw
(``mesh/underlay``), so no observer changes the node or keeps a keeper of its own.

The daemon imports this module when it first observes, not at its top: that is after READY=1 on
a start that writes the config, and the observers' modules cost some 60 ms of imports that K3s's
start should not wait for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from k3snode.health.checks import Observation
from k3snode.k3s import overrides
from k3snode.mesh.tailscale import health as tailscale_health
from k3snode.mesh.wg import health as wg_health

if TYPE_CHECKING:
    from k3snode.config.model import Settings

Observer = Callable[["Settings"], "list[Observation]"]


def observers() -> tuple[Observer, ...]:
    """One daemon's observers, in report order. Made once per daemon: an observer with state
    between calls (flannel's: the peers' first sightings, one netlink socket per interface) is
    an object created here."""
    return (
        tailscale_health.observe,
        wg_health.Flannel(),
        overrides.observe,
    )


def name(observer: Observer) -> str:
    """``module:function`` (``module:Class`` for an object), the check an observer's own failure
    is reported under."""
    what = observer if hasattr(observer, "__qualname__") else type(observer)
    return f"{what.__module__}:{what.__qualname__}"
