"""Oracle Cloud (OCI): IPv6 from the VNIC list; the public IPv4 is never in OCI's metadata (it is
1:1 NAT outside the guest), so that family is left to the fallbacks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode.discovery.dmi import Dmi
from k3snode.discovery.providers.common import Answer, Reading, dig, parse_json

if TYPE_CHECKING:
    from k3snode.discovery.http import Client


ID = "oracle"
CLOUD_INIT = ("oracle",)  # cloud-init's cloud-id / cloud_name for this cloud
BASE = "http://169.254.169.254"
BASE6 = "http://[fd00:c1::a9fe:a9fe]"  # asked when the IPv4 one is unreachable (IPv6-only)
PATH = "/opc/v2/vnics/"
HEADERS = {"Authorization": "Bearer Oracle"}


def recognise(dmi: Dmi) -> bool:
    return dmi.get("chassis_asset_tag") == "OracleCloud.com"


def fetch(client: Client, ds: object = None) -> Answer:
    resp = client.get(PATH, HEADERS)
    if resp.status == 404:  # an old instance without v2
        resp = client.get("/opc/v1/vnics/")
    vnics = parse_json(resp, PATH)
    r = Reading(ID)
    r.notes.append("oracle metadata: public IPv4 is not published by OCI")
    first = dig(vnics, 0) or {}
    six = dig(first, "ipv6Addresses")
    if isinstance(six, list) and six:
        for value in six:
            if r.offer("ipv6", value, "vnics[0].ipv6Addresses"):
                break
    else:
        r.say_none("ipv6", "vnics[0].ipv6Addresses empty")
    r.private(dig(first, "privateIp"))
    return r.answer()
