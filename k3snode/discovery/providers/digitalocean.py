"""DigitalOcean: one JSON document, ``/metadata/v1.json``.

IPv6 comes upper-case and uncompressed (normalised by the judge). The reserved (floating) IP is
NAT'd to the droplet's anchor address and can move to another droplet: never the node's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode.discovery.dmi import Dmi
from k3snode.discovery.providers.common import Answer, Reading, dig, parse_json

if TYPE_CHECKING:
    from k3snode.discovery.http import Client


ID = "digitalocean"
CLOUD_INIT = ("digitalocean",)  # cloud-init's cloud-id / cloud_name for this cloud
BASE = "http://169.254.169.254"
PATH = "/metadata/v1.json"


def recognise(dmi: Dmi) -> bool:
    return dmi.get("sys_vendor") == "DigitalOcean"


def fetch(client: Client, ds: object = None) -> Answer:
    data = parse_json(client.get(PATH), PATH)
    r = Reading(ID)
    public = dig(data, "interfaces", "public", 0) or {}
    for fam in ("ipv4", "ipv6"):
        value = dig(public, fam, "ip_address")
        if value:
            r.offer(fam, value, f"interfaces.public[0].{fam}.ip_address")
        else:
            r.say_none(fam, f"interfaces.public[0].{fam} absent")
    r.private(dig(data, "interfaces", "private", 0, "ipv4", "ip_address"))
    return r.answer()
