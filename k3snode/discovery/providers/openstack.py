"""OpenStack (Nova metadata, EC2-compatible tree): ``public-ipv4`` is the first floating IP and an
empty 200 when there is none. On a provider network the fixed address (``local-ipv4``, or an IPv6
in ``network_data.json``) is itself public; only then is it taken."""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode import addresses
from k3snode.discovery.dmi import Dmi
from k3snode.discovery.providers.common import (
    Answer,
    Reading,
    as_list,
    dig,
    parse_json,
    unexpected,
)

if TYPE_CHECKING:
    from k3snode.discovery.http import Client


ID = "openstack"
CLOUD_INIT = ("openstack",)  # cloud-init's cloud-id / cloud_name for this cloud
BASE = "http://169.254.169.254"
PRODUCTS = ("OpenStack Nova", "OpenStack Compute")
ASSET_TAGS = (
    *PRODUCTS,
    "OpenTelekomCloud",
    "SAP CCloud VM",
    "Samsung Cloud Platform",
)  # HUAWEICLOUD (also an OpenStack asset tag for cloud-init) is the ``huawei`` provider
NETWORK_DATA = "/openstack/latest/network_data.json"


def recognise(dmi: Dmi) -> bool:
    return dmi.get("product_name") in PRODUCTS or dmi.get("chassis_asset_tag") in ASSET_TAGS


def fetch(client: Client, ds: object = None, provider: str = ID) -> Answer:
    """Also used by the OpenStack-based clouds (``huawei``, ``ovh``) under their own id."""
    r = Reading(provider)
    local = client.get("/latest/meta-data/local-ipv4")
    local_ip = local.text.strip() if local.status == 200 else ""
    r.private(local_ip)
    resp = client.get("/latest/meta-data/public-ipv4")
    if resp.status not in (200, 404):  # 403: the service refuses (disabled, policy)
        raise unexpected(resp, "public-ipv4")
    floating = resp.text.strip() if resp.status == 200 else ""
    if floating:
        r.offer("ipv4", floating, "public-ipv4 (floating IP)")
    elif local_ip and addresses.judge(local_ip, 4).ok:
        r.offer("ipv4", local_ip, "local-ipv4 (provider network)")
    elif resp.status in (200, 404):
        r.say_none("ipv4", f"public-ipv4: {'empty' if resp.status == 200 else '404'}")
    resp = client.get(NETWORK_DATA)
    if resp.status != 200:
        return r.answer()
    six = [
        n.get("ip_address")
        for n in as_list(dig(parse_json(resp, NETWORK_DATA), "networks"))
        if isinstance(n, dict) and str(n.get("type", "")).startswith("ipv6") and n.get("ip_address")
    ]
    for value in six:
        if r.offer("ipv6", value, "network_data.json ipv6"):
            break
    if not six:
        r.say_none("ipv6", "no ipv6 network in network_data.json")
    return r.answer()
