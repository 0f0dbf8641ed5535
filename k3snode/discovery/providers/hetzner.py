"""Hetzner Cloud: ``/hetzner/v1/metadata`` is YAML; the public IPv6 is only in its network-config
(the ``ipv6: true`` subnet of the physical interface, with a prefix length)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode import bounded
from k3snode.discovery.dmi import Dmi
from k3snode.discovery.errors import MetadataError
from k3snode.discovery.providers.common import Answer, Reading, as_list, dig, unexpected

if TYPE_CHECKING:
    from k3snode.discovery.http import Client


ID = "hetzner"
CLOUD_INIT = ("hetzner",)  # cloud-init's cloud-id / cloud_name for this cloud
BASE = "http://169.254.169.254"
PATH = "/hetzner/v1/metadata"


def recognise(dmi: Dmi) -> bool:
    return dmi.get("sys_vendor") == "Hetzner"


def fetch(client: Client, ds: object = None) -> Answer:
    import yaml  # PyYAML only here: ~10 ms of import that other clouds need not pay

    resp = client.get(PATH)
    if resp.status != 200:
        raise unexpected(resp, PATH)
    try:
        data = bounded.load_yaml(resp.text)
    except bounded.TooComplex as e:
        raise MetadataError(f"{PATH}: refused: {e}") from None
    except yaml.YAMLError:
        raise MetadataError(f"{PATH}: not YAML") from None
    if not isinstance(data, dict):
        raise MetadataError(f"{PATH}: not a YAML mapping")
    r = Reading(ID)
    v4 = data.get("public-ipv4")
    if v4:
        r.offer("ipv4", str(v4), "public-ipv4")
    else:
        r.say_none("ipv4", "public-ipv4 empty")
    subnets = [
        s
        for iface in as_list(dig(data, "network-config", "config"))
        if isinstance(iface, dict) and iface.get("type") == "physical"
        for s in as_list(iface.get("subnets"))
        if isinstance(s, dict) and s.get("ipv6") and s.get("address")
    ]
    for s in subnets:
        if r.offer("ipv6", str(s["address"]), "network-config ipv6 subnet"):
            break
    if not subnets:
        r.say_none("ipv6", "no ipv6 subnet in network-config")
    for net in as_list(data.get("private-networks")):
        r.private(dig(net, "ip"))
    return r.answer()
