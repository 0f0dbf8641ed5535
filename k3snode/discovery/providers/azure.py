"""Microsoft Azure IMDS: ``Metadata: true``, an ``api-version``, ``format=text`` for leaves.

The instance's own public IPv4 field only ever held Basic-SKU addresses (retired 2025); a
Standard-SKU public IP shows up on the load-balancer endpoint instead, so an empty instance field
sends k3snode there. Only ``publicIpAddresses[].frontendIpAddress`` is used — inbound/outbound rule
frontends are shared load-balancer/SNAT addresses, not the node's. Azure publishes no public IPv6.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode.discovery.dmi import Dmi
from k3snode.discovery.providers.common import Answer, Reading, as_list, dig, parse_json, unexpected

if TYPE_CHECKING:
    from k3snode.discovery.http import Client


ID = "azure"
CLOUD_INIT = ("azure", "azure-china")  # cloud-init's cloud-id / cloud_name for this cloud
BASE = "http://169.254.169.254"
ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
HEADERS = {"Metadata": "true"}
IPV4 = "/metadata/instance/network/interface/0/ipv4/ipAddress/0"
PUBLIC = f"{IPV4}/publicIpAddress?api-version=2021-02-01&format=text"
PRIVATE = f"{IPV4}/privateIpAddress?api-version=2021-02-01&format=text"
LOADBALANCER = "/metadata/loadbalancer?api-version=2020-10-01"
# Azure documents 410 Gone while IMDS is not ready yet ("retry after some time for a max of 70
# seconds") and 429 for its rate limit (5 requests/s): both are retried, 410 until the deadline.
PATIENT = (410,)


def recognise(dmi: Dmi) -> bool:
    return dmi.get("chassis_asset_tag") == ASSET_TAG


def fetch(client: Client, ds: object = None) -> Answer:
    r = Reading(ID)
    resp = client.get(PUBLIC, HEADERS)
    if resp.status not in (200, 404):
        raise unexpected(resp, "instance publicIpAddress")
    if resp.status == 200 and resp.text.strip():
        r.offer("ipv4", resp.text.strip(), "instance publicIpAddress")
    else:
        resp = client.get(LOADBALANCER, HEADERS)
        if resp.status in (400, 404):  # no Standard load balancer / public IP: an error object
            r.say_none("ipv4", f"instance publicIpAddress empty, loadbalancer: {resp.status}")
        else:
            data = parse_json(resp, "loadbalancer")
            frontends = as_list(dig(data, "loadbalancer", "publicIpAddresses"))
            for entry in frontends:
                if r.offer(
                    "ipv4", dig(entry, "frontendIpAddress"), "loadbalancer frontendIpAddress"
                ):
                    break
            if not frontends:
                r.say_none("ipv4", "instance publicIpAddress empty, no loadbalancer public IP")
    if not client.brief:  # informational: not asked by the daemon's polls
        resp = client.get(PRIVATE, HEADERS)
        if resp.status == 200:
            r.private(resp.text)
    return r.answer()
