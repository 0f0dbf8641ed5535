"""Google Compute Engine: ``Metadata-Flavor: Google`` both ways (sent, and checked on the answer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode.discovery.dmi import Dmi
from k3snode.discovery.errors import MetadataError
from k3snode.discovery.providers.common import Answer, Reading

if TYPE_CHECKING:
    from k3snode.discovery.http import Client, Response


ID = "gcp"
BASE = "http://169.254.169.254"
NIC = "/computeMetadata/v1/instance/network-interfaces/0"
HEADERS = {"Metadata-Flavor": "Google"}


def recognise(dmi: Dmi) -> bool:
    return dmi.get("product_name") in ("Google Compute Engine", "Google") or dmi.get(
        "product_serial"
    ).startswith("GoogleCloud-")


def _get(client: Client, path: str) -> Response:
    resp = client.get(path, HEADERS)
    if resp.header("Metadata-Flavor") != "Google":  # Google sets it on every answer, 404s too
        raise MetadataError(
            f"GET {path}: HTTP {resp.status} without Metadata-Flavor: Google (not GCE metadata)"
        )
    return resp


def fetch(client: Client, ds: object = None) -> Answer:
    r = Reading(ID)
    path = f"{NIC}/access-configs/0/external-ip"
    r.text_leaf("ipv4", _get(client, path), path)
    path = f"{NIC}/ipv6s"
    resp = _get(client, path)
    if resp.status == 200 and resp.text.strip():
        for line in resp.text.split():
            if r.offer("ipv6", line, path):
                break
    else:
        r.text_leaf("ipv6", resp, path)
    resp = _get(client, f"{NIC}/ip")
    if resp.status == 200:
        r.private(resp.text)
    return r.answer()
