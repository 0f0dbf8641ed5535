"""Exoscale (CloudStack-style tree): ``/1.0/meta-data/public-ipv4``. Port 8080 on the same address
is the password server (a GET marks the password as read): k3snode never touches it. IPv6 is not
in the metadata (SLAAC on the NIC), so that family is left to the fallbacks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode.discovery.dmi import Dmi
from k3snode.discovery.providers.common import Answer, Reading

if TYPE_CHECKING:
    from k3snode.discovery.http import Client


ID = "exoscale"
CLOUD_INIT = ("exoscale",)  # cloud-init's cloud-id / cloud_name for this cloud
BASE = "http://169.254.169.254"
MD = "/1.0/meta-data"


def recognise(dmi: Dmi) -> bool:
    return dmi.get("product_name").startswith("Exoscale")


def fetch(client: Client, ds: object = None) -> Answer:
    r = Reading(ID)
    r.text_leaf("ipv4", client.get(f"{MD}/public-ipv4"), "public-ipv4")
    if not client.brief:  # informational: not asked by the daemon's polls
        resp = client.get(f"{MD}/local-ipv4")
        if resp.status == 200:
            r.private(resp.text)
    return r.answer()
