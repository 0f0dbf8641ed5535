"""Tencent Cloud CVM: an EC2-style text tree at 169.254.0.23 (``metadata.tencentyun.com``; the
address is used, not the name). ``public-ipv4`` is the public IP (a 404 when there is none, as the
docs say for any absent resource); ``local-ipv4`` the private one. Tencent's metadata documents no
IPv6 leaf, so that family is left to the fallbacks (an IPv6 is configured on the NIC)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode.discovery.dmi import Dmi
from k3snode.discovery.providers.common import Answer, Reading

if TYPE_CHECKING:
    from k3snode.discovery.http import Client


ID = "tencent"
BASE = "http://169.254.0.23"
MD = "/latest/meta-data"


def recognise(dmi: Dmi) -> bool:
    # (unverified against Tencent's docs: the DMI strings of CVM guests as users report them)
    return dmi.get("sys_vendor") == "Tencent Cloud" or dmi.get("product_name") == "Tencent CVM"


def fetch(client: Client, ds: object = None) -> Answer:
    r = Reading(ID)
    r.text_leaf("ipv4", client.get(f"{MD}/public-ipv4"), "public-ipv4")
    r.notes.append("tencent metadata: public IPv6 is not published by Tencent Cloud")
    if not client.brief:  # informational: not asked by the daemon's polls
        resp = client.get(f"{MD}/local-ipv4")
        if resp.status == 200:
            r.private(resp.text)
    return r.answer()
