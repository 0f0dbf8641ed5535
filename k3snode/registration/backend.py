"""How records reach DNS: the ``Backend`` interface, and loading the configured one.

k3snode ships one backend, RFC 2136 dynamic updates signed with TSIG (``rfc2136.py``), which BIND,
Knot, PowerDNS and most self-run authoritative servers accept. A hosted DNS service that only has
an HTTP API needs a plugin: ``[registration] backend = "mypackage.mydns:make"`` names a function
that takes the ``RegistrationSettings`` and returns an object with the two methods below. The
plugin is imported only on servers that publish; it must bound its own time by
``settings.timeout`` and raise ``RegistrationError`` with one readable line on failure.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

from k3snode.registration.errors import RegistrationError
from k3snode.registration.rfc2136 import Rfc2136

if TYPE_CHECKING:
    from k3snode.config.model import RegistrationSettings

__all__ = ["Backend", "RegistrationError", "load"]  # plugins import RegistrationError from here


class Backend(Protocol):
    """Publishes this server's addresses in the registration name's A/AAAA records.

    ``replace`` removes exactly ``remove`` and adds ``add`` in one atomic step, touching no other
    record of the name (other servers share it). ``lookup`` returns the name's A/AAAA addresses
    as the authority answers (for ``k3snode registration show``).
    """

    def where(self) -> str:
        """Where updates go, for messages (``10.0.0.53:53``, ``api.example-dns.com``)."""
        ...

    def replace(self, remove: tuple[str, ...], add: tuple[str, ...]) -> None: ...

    def lookup(self) -> tuple[str, ...]: ...


def load(reg: RegistrationSettings) -> Backend:
    """The configured backend (no network, no import of dnspython yet)."""
    if reg.backend == "rfc2136":
        return Rfc2136(reg)
    module, _, factory = reg.backend.partition(":")
    try:
        make = getattr(importlib.import_module(module), factory)
    except (ImportError, AttributeError) as e:
        raise RegistrationError(
            f"[registration] backend: cannot load plugin {reg.backend!r} ({e})"
        ) from None
    return make(reg)
