"""Vultr: ``/v1.json``; the interface with ``network-type: public`` carries both families (IPv6
sometimes with zero-padded groups)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode.discovery.dmi import Dmi
from k3snode.discovery.providers.common import Answer, Reading, as_list, dig, parse_json

if TYPE_CHECKING:
    from k3snode.discovery.http import Client


ID = "vultr"
CLOUD_INIT = ("vultr",)  # cloud-init's cloud-id / cloud_name for this cloud
BASE = "http://169.254.169.254"
PATH = "/v1.json"


def recognise(dmi: Dmi) -> bool:
    return dmi.get("sys_vendor") == "Vultr"


def fetch(client: Client, ds: object = None) -> Answer:
    data = parse_json(client.get(PATH), PATH)
    r = Reading(ID)
    ifaces = [i for i in as_list(dig(data, "interfaces")) if isinstance(i, dict)]
    public = next((i for i in ifaces if i.get("network-type") == "public"), None)
    if public is None and ifaces and "network-type" not in ifaces[0]:
        public = ifaces[0]
    for fam in ("ipv4", "ipv6"):
        value = dig(public, fam, "address")
        if value:
            r.offer(fam, value, f"public interface {fam}.address")
        else:
            r.say_none(fam, f"public interface has no {fam}.address")
    private = next((i for i in ifaces if i.get("network-type") == "private"), None)
    r.private(dig(private, "ipv4", "address"))
    return r.answer()
