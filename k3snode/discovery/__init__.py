"""Find the node's external addresses: static settings, then cloud metadata, then interfaces, then
(opt-in) echo services. ``discover`` is the one entry point; each source lives in its own module.

Order, per family (IPv4, IPv6), each step filling only what is still missing:

1. ``[discovery] external_ips`` — taken as given (a non-public one with a logged warning).
2. The metadata service of the cloud named by ``[discovery] provider``, else by cloud-init's own
   answer (``/run/cloud-init/instance-data.json``, ``cloud-id``), else recognised from DMI — and of
   that cloud only. No recognised cloud: no metadata address is contacted at all. Where the
   service has an IPv6 address too, both are raced (IPv4 first, IPv6 150 ms later).
   "No public address" (404, empty) is an answer: no echo service is asked for that family.
   When the service does not answer, cloud-init's boot-time public addresses (if any) are used.
3. The global addresses on the default-route interface (rtnetlink; an address on the NIC is the
   node's own, so this runs even where the metadata said "none").
4. HTTPS echo services, only when ``[discovery] echo`` is on, and never for a family the metadata
   said is absent: an echo behind NAT reports the gateway, not the node.

Everything shares one deadline (``[discovery] timeout``); nothing here waits longer.
"""

from __future__ import annotations

import logging
import struct
import time
from typing import TYPE_CHECKING

from k3snode import addresses
from k3snode.discovery import cloudinit, interfaces, providers
from k3snode.discovery import dmi as dmi_mod
from k3snode.discovery.errors import MetadataError, MetadataTimeout, MetadataUnreachable
from k3snode.discovery.result import Discovery
from k3snode.progress import Step
from k3snode.record import replace

if TYPE_CHECKING:
    from k3snode.config.model import DiscoverySettings, Settings
    from k3snode.discovery.dmi import Dmi

log = logging.getLogger(__name__)

__all__ = ["Discovery", "Session", "choose_provider", "discover"]

FAMILIES = ("ipv4", "ipv6")


_NO_HINT = object()


def choose_provider(
    ds: DiscoverySettings, dmi: Dmi | None = None, hint=_NO_HINT
) -> tuple[str | None, str]:
    """(provider id or None, how it was chosen) — from settings, else cloud-init's answer, else
    DMI; file reads only, no network. ``hint`` (a ``cloudinit.Hint`` or None) is read from
    ``/run/cloud-init`` when not given."""
    if ds.provider == "none":
        return None, "metadata disabled ([discovery] provider = none)"
    if ds.provider != "auto":
        return ds.provider, "named in settings"

    if hint is _NO_HINT:
        hint = _hint(ds)[0]
    if hint is not None and hint.provider:
        refined = _refine(hint.provider, ds, dmi)
        return refined, f"named by cloud-init ({hint.cloud}, {hint.source})" + (
            f", refined from DMI to {refined}" if refined != hint.provider else ""
        )
    if dmi is None:
        if ds.dmi_dir == dmi_mod.DEFAULT_DIR and dmi_mod.in_container():
            return None, "in a container: DMI describes the host, not used (set a provider)"
        dmi = dmi_mod.read(ds.dmi_dir)
    found = providers.recognise(dmi)
    if found:
        return found, f"recognised from DMI ({ds.dmi_dir})"
    if dmi.empty:
        return None, f"no DMI fields in {ds.dmi_dir}: no cloud recognised, metadata not asked"
    return None, "DMI matches no cloud: metadata not asked"


def _hint(ds: DiscoverySettings):
    """cloud-init's answer (file reads only) — not when ``dmi_dir`` was pointed elsewhere: a node
    described by another DMI directory (a test, an image build) is not the one cloud-init saw."""
    if ds.dmi_dir != dmi_mod.DEFAULT_DIR:
        return None, ""
    return cloudinit.read()


def _refine(provider: str, ds: DiscoverySettings, dmi: Dmi | None) -> str:
    """cloud-init calls Huawei Cloud "openstack"; DMI tells the refinement (``REFINES``)."""
    candidates = [p for p in providers.IDS if getattr(providers.load(p), "REFINES", "") == provider]
    if not candidates:
        return provider
    dmi = dmi or dmi_mod.read(ds.dmi_dir)
    return next((p for p in candidates if providers.load(p).recognise(dmi)), provider)


class Session:
    """What a caller that discovers again and again (the daemon) keeps between discoveries: the
    metadata services' session tokens (AWS IMDSv2's, reused until shortly before it expires), so
    a poll is one or two GETs. A session's discoveries ask only for what a pass needs: no private
    address (it is informational, for ``k3snode detect``)."""

    def __init__(self) -> None:
        self.memo: dict = {}


def discover(
    settings: Settings, monotonic=time.monotonic, session: Session | None = None
) -> Discovery:
    """One discovery, bounded by ``[discovery] timeout``; never raises for network trouble."""
    started = monotonic()
    ds = settings.discovery
    deadline = started + ds.timeout
    found: dict[str, str | None] = {"ipv4": ds.static_ipv4, "ipv6": ds.static_ipv6}
    sources = {fam: "static" for fam, addr in found.items() if addr}
    notes: list[str] = []
    for fam in FAMILIES:
        _warn_if_not_public(found[fam])
    settled = {fam for fam in FAMILIES if found[fam]}
    private_ipv4: str | None = None
    metadata_error: str | None = None
    error: str | None = None

    said_none: set[str] = set()  # families the metadata positively has no address for
    hint = None
    provider, how = None, ""
    if len(settled) < len(FAMILIES):
        if ds.provider == "auto":
            hint, hint_note = _hint(ds)
            if hint_note:
                notes.append(hint_note)
        provider, how = choose_provider(ds, hint=hint)
    if provider:
        answer, metadata_error = _metadata(provider, ds, deadline, monotonic, session)
        if answer is not None:
            notes.extend(answer.notes)
            private_ipv4 = answer.private_ipv4
            for fam in FAMILIES:
                if fam in settled:
                    continue
                if answer.get(fam):
                    found[fam] = answer.get(fam)
                    sources[fam] = "metadata"
                    settled.add(fam)
                elif fam in answer.none:
                    said_none.add(fam)
    elif how:
        notes.append(how)
    if metadata_error and hint is not None and _hint_is_for(hint, provider):
        _from_hint(hint, found, sources, settled, notes)

    open_ = [fam for fam in FAMILIES if fam not in settled]
    if open_:  # an address on the NIC is the node's own, even where metadata says "none"
        try:
            got = interfaces.read()
        except (OSError, ValueError, struct.error) as e:
            notes.append(f"cannot read interfaces: {e}")
        else:
            notes.extend(got.notes)
            private_ipv4 = private_ipv4 or got.private_ipv4
            for fam, addr in (("ipv4", got.public_ipv4), ("ipv6", got.public_ipv6)):
                if fam in open_ and addr:
                    found[fam] = addr
                    sources[fam] = "interface"
    open_ = [fam for fam in open_ if not found[fam]]
    if ds.echo and said_none & set(open_):
        notes.append("echo services not asked where metadata says the node has no public address")
    open_ = [fam for fam in open_ if fam not in said_none]  # an echo would see the NAT gateway
    if open_ and ds.echo:
        from k3snode.discovery import echo

        got_echo = echo.discover(ds.echo_services, open_, deadline, clock=monotonic)
        notes.extend(got_echo.notes)
        for fam in open_:
            if got_echo.get(fam):
                found[fam] = got_echo.get(fam)
                sources[fam] = "echo"
                notes.append(
                    f"{got_echo.get(fam)} (echo) is not on this node's default-route interface: "
                    "behind NAT, inbound connections need port forwarding (or mesh = tailscale)"
                )

    if metadata_error:
        missing = [fam for fam in FAMILIES if not found[fam] and fam not in said_none]
        if missing:
            error = metadata_error
        else:
            notes.append(metadata_error)
    return Discovery(
        provider=provider,
        public_ipv4=found["ipv4"],
        public_ipv6=found["ipv6"],
        private_ipv4=private_ipv4,
        sources=sources,
        notes=tuple(notes),
        error=error,
        duration=monotonic() - started,
    )


def _hint_is_for(hint, provider: str | None) -> bool:
    """The hint named this provider (or the cloud it refines: cloud-init's "openstack" on Huawei)."""
    if not provider or not hint.provider:
        return False
    return provider == hint.provider or getattr(providers.load(provider), "REFINES", "") == (
        hint.provider
    )


def _from_hint(hint, found: dict, sources: dict, settled: set, notes: list) -> None:
    """The metadata service did not answer now: cloud-init's boot-time addresses fill in."""
    for fam in FAMILIES:
        value = hint.get(fam)
        if fam in settled or not value:
            continue
        judged = addresses.judge(value, want_family=4 if fam == "ipv4" else 6)
        if judged.ok and judged.address:
            found[fam] = judged.address
            sources[fam] = "cloud-init"
            settled.add(fam)
            notes.append(
                f"{judged.address} from cloud-init's {hint.source} (boot time): the metadata "
                "service did not answer now"
            )
        else:
            notes.append(f"cloud-init {hint.source}: {value!r:.50} rejected: {judged.problem}")


def _warn_if_not_public(address: str | None) -> None:
    """A static address is taken as given; a non-public one is logged as a warning."""
    problem = address and addresses.public_problem(address)
    if problem:
        log.warning("static external address %s is %s; used as given", address, problem)


def _metadata(
    provider: str, ds: DiscoverySettings, deadline: float, monotonic, session: Session | None
):
    """(Answer, None) or (None, error text) from the provider's metadata service. Where it has an
    IPv6 address too, both are raced for the first TCP connection (IPv4 at once, IPv6 after
    ``STAGGER``); the winner is asked, the other one after it only if it was unreachable."""
    module = providers.load(provider)
    if module.BASE is None:  # no HTTP service (VMware guestinfo): the module reads it itself
        try:
            return module.read(ds, deadline), None
        except MetadataError as e:
            return None, f"{provider} metadata: {e}"
    from k3snode.discovery.http import Client, race

    bases = [module.BASE]
    errors: list[str] = []
    if not ds.metadata_endpoint and getattr(module, "BASE6", None):
        bases.append(module.BASE6)
        winner, lost = race(bases, deadline, STAGGER, clock=monotonic)
        if winner is not None:
            bases.insert(0, bases.pop(winner))
            errors.extend(f"{provider} metadata ({why})" for why in lost)
    for base in bases:
        client = Client(base, deadline, override=ds.metadata_endpoint, clock=monotonic,
                        patient=frozenset(getattr(module, "PATIENT", ())),
                        memo=session.memo if session else {}, brief=session is not None)  # fmt: skip
        try:
            answer = _fetch(provider, module, client, ds)
        except MetadataUnreachable as e:
            errors.append(f"{provider} metadata ({client.where}): {e}")
            continue
        except MetadataError as e:
            error = f"{provider} metadata ({client.where}): {e}"
            return None, _with_hint(module, error) if "connection refused" in error else error
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as e:  # garbage
            return (
                None,
                f"{provider} metadata ({client.where}): malformed answer ({type(e).__name__})",
            )
        if errors:
            answer = replace(answer, notes=(*answer.notes, *errors))
        return answer, None
    return None, _with_hint(module, "; ".join(dict.fromkeys(errors)))


STAGGER = 0.15  # seconds between the IPv4 and the IPv6 metadata address (RFC 6555, cloud-init)


def _with_hint(module, error: str) -> str:
    """A provider's advice for a metadata service that cannot be reached (IBM's is off by
    default)."""
    hint = getattr(module, "UNREACHABLE_HINT", "")
    return f"{error}; {hint}" if hint else error


def _fetch(provider: str, module, client, ds: DiscoverySettings):
    """``module.fetch``, announced when it takes more than a second (and asked/answered at -v)."""
    host = client.where.split("://", 1)[-1]
    left = max(0.0, client.left())
    text = f"asking {provider} metadata at {host} (up to {left:.0f} s)"
    log.debug("%s", text)

    with Step(log, text) as step:
        try:
            answer = module.fetch(client, ds)
        except (MetadataTimeout, MetadataUnreachable):
            step.result("no answer")
            raise
        except MetadataError as e:
            step.result("no answer" if "no answer" in str(e) else "gave up (see below)")
            raise
        except Exception:
            step.result("no usable answer")
            raise
        step.result("answered")
    log.debug(
        "%s metadata answered: public IPv4 %s, IPv6 %s",
        provider,
        answer.get("ipv4") or "none",
        answer.get("ipv6") or "none",
    )
    return answer
