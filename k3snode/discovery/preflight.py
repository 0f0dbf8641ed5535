"""``k3snode check`` findings about discovery — decided without any network: which metadata
service would be asked and why, and settings that deserve a second look."""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode import addresses
from k3snode.discovery import choose_provider, dmi, providers
from k3snode.health.checks import Finding

if TYPE_CHECKING:
    from k3snode.config.model import Settings


def findings(settings: Settings) -> list[Finding]:
    ds = settings.discovery
    out: list[Finding] = []
    for address in ds.external_ips:
        problem = addresses.public_problem(address)
        if problem:
            out.append(
                Finding("warning", "discovery", f"static external address {address} is {problem}")
            )
    if ds.static_ipv4 and ds.static_ipv6:
        out.append(Finding("ok", "discovery", "both families static: nothing is discovered"))
        return out
    provider, how = choose_provider(ds)
    if provider:
        base = providers.load(provider).BASE
        where = ds.metadata_endpoint or base or "guestinfo (vmware-rpctool)"
        out.append(Finding("ok", "discovery", f"metadata of {provider} at {where} ({how})"))
        if ds.provider not in ("auto", "none"):
            seen = providers.recognise(dmi.read(ds.dmi_dir))
            if seen and seen != provider:
                out.append(Finding("warning", "discovery",
                                   f"[discovery] provider = {provider!r} but DMI says {seen!r}"))  # fmt: skip
    else:
        out.append(Finding("ok", "discovery", f"no metadata service: {how}"))
    if ds.allow_imdsv1:
        out.append(Finding("warning", "discovery",
                           "[discovery] allow_imdsv1 = true: token-less IMDSv1 requests allowed"))  # fmt: skip
    if ds.echo:
        out.append(Finding("warning", "discovery",
                           f"[discovery] echo = true: {len(ds.echo_services)} third-party echo "
                           "services may learn this node's address; behind NAT they report the "
                           "gateway's"))  # fmt: skip
    return out
