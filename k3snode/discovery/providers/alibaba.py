"""Alibaba Cloud ECS (100.100.100.200): EIP first, then the fixed public IP; the token of its
"security hardening" mode is requested but optional."""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode.discovery.dmi import Dmi
from k3snode.discovery.errors import MetadataError
from k3snode.discovery.providers.common import Answer, Reading, unexpected

if TYPE_CHECKING:
    from k3snode.discovery.http import Client


ID = "alibaba"
CLOUD_INIT = ("aliyun",)  # cloud-init's cloud-id / cloud_name for this cloud
BASE = "http://100.100.100.200"
MD = "/latest/meta-data"


def recognise(dmi: Dmi) -> bool:
    return dmi.get("product_name") == "Alibaba Cloud ECS" or dmi.get("sys_vendor").startswith(
        "Alibaba Cloud"
    )


def _token(client: Client) -> dict[str, str]:
    try:
        resp = client.request(
            "PUT",
            "/latest/api/token",
            {"X-aliyun-ecs-metadata-token-ttl-seconds": "60"},
            retry=False,
            read_timeout=1.0,
        )
    except MetadataError:
        return {}
    if resp.status == 200 and resp.body.strip():
        return {"X-aliyun-ecs-metadata-token": resp.text.strip()}
    return {}


def fetch(client: Client, ds: object = None) -> Answer:
    headers = _token(client)
    r = Reading(ID)
    offered = False
    for leaf in ("eipv4", "public-ipv4"):
        resp = client.get(f"{MD}/{leaf}", headers)
        if resp.status in (401, 403):
            raise MetadataError(f"GET {MD}/{leaf}: HTTP {resp.status} (token required?)")
        if resp.status == 200 and resp.text.strip():
            offered = True
            if r.offer("ipv4", resp.text.strip(), leaf):
                break
        elif resp.status not in (200, 404):
            raise unexpected(resp, f"{MD}/{leaf}")
    if not offered:
        r.say_none("ipv4", "eipv4 and public-ipv4 absent")
    mac = client.get(f"{MD}/mac", headers)
    if mac.status == 200 and mac.text.strip():
        path = f"{MD}/network/interfaces/macs/{mac.text.strip()}/ipv6s"
        resp = client.get(path, headers)
        if resp.status == 200:
            values = resp.text.strip().strip("[]").replace(",", " ").split()
            for value in values:
                if r.offer("ipv6", value, "ipv6s"):
                    break
            if not values:
                r.say_none("ipv6", "ipv6s empty")
        elif resp.status == 404:
            r.say_none("ipv6", "ipv6s: 404")
        else:
            raise unexpected(resp, path)
    if not client.brief:  # informational: not asked by the daemon's polls
        resp = client.get(f"{MD}/private-ipv4", headers)
        if resp.status == 200:
            r.private(resp.text)
    return r.answer()
