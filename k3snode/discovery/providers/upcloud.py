"""UpCloud: ``/metadata/v1.json``; the ``public`` interface's non-floating addresses per family
(a floating IP is extra and can move, so it is never the node's own)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode.discovery.dmi import Dmi
from k3snode.discovery.providers.common import Answer, Reading, as_list, dig, parse_json

if TYPE_CHECKING:
    from k3snode.discovery.http import Client


ID = "upcloud"
CLOUD_INIT = ("upcloud",)  # cloud-init's cloud-id / cloud_name for this cloud
BASE = "http://169.254.169.254"
PATH = "/metadata/v1.json"


def recognise(dmi: Dmi) -> bool:
    return dmi.get("sys_vendor") == "UpCloud"


def fetch(client: Client, ds: object = None) -> Answer:
    data = parse_json(client.get(PATH), PATH)
    r = Reading(ID)
    ifaces = [i for i in as_list(dig(data, "network", "interfaces")) if isinstance(i, dict)]
    by_family: dict[str, list] = {"ipv4": [], "ipv6": []}
    for iface in ifaces:
        for ip in as_list(iface.get("ip_addresses")):
            if not isinstance(ip, dict):
                continue
            fam = {"IPv4": "ipv4", "IPv6": "ipv6"}.get(str(ip.get("family", "")))
            if fam is None:
                continue
            if iface.get("type") == "public":
                if ip.get("floating"):
                    r.notes.append(f"upcloud: floating {ip.get('address')} ignored (can move)")
                else:
                    by_family[fam].append(ip.get("address"))
            elif iface.get("type") == "private" and fam == "ipv4":
                r.private(ip.get("address"))
    for fam, values in by_family.items():
        for value in values:
            if r.offer(fam, value, f"public interface {fam}"):
                break
        if not values:
            r.say_none(fam, f"public interface has no {fam}")
    return r.answer()
