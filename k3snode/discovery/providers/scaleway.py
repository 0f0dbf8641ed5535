"""Scaleway (169.254.42.42): ``/conf?format=json``; ``public_ip`` / ``ipv6`` objects, or the newer
``public_ips`` list with a ``family`` per entry. ``null`` means none."""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode.discovery.dmi import Dmi
from k3snode.discovery.providers.common import Answer, Reading, as_list, dig, parse_json

if TYPE_CHECKING:
    from k3snode.discovery.http import Client


ID = "scaleway"
CLOUD_INIT = ("scaleway",)  # cloud-init's cloud-id / cloud_name for this cloud
BASE = "http://169.254.42.42"
BASE6 = "http://[fd00:42::42]"  # asked when the IPv4 one is unreachable (IPv6-only)
PATH = "/conf?format=json"


def recognise(dmi: Dmi) -> bool:
    return dmi.get("sys_vendor") == "Scaleway"


def fetch(client: Client, ds: object = None) -> Answer:
    data = parse_json(client.get(PATH), PATH)
    r = Reading(ID)
    listed = [p for p in as_list(dig(data, "public_ips")) if isinstance(p, dict)]
    candidates = {
        "ipv4": [dig(data, "public_ip", "address")]
        + [p.get("address") for p in listed if p.get("family") == "inet"],
        "ipv6": [dig(data, "ipv6", "address")]
        + [p.get("address") for p in listed if p.get("family") == "inet6"],
    }
    for fam, values in candidates.items():
        values = [v for v in values if v]
        for value in values:
            if r.offer(fam, value, f"public {fam}"):
                break
        if not values:
            r.say_none(fam, f"no public {fam} in /conf")
    r.private(dig(data, "private_ip"))
    return r.answer()
