"""Yandex Cloud: a Google-Compute-Engine-compatible metadata service at 169.254.169.254
(``Metadata-Flavor: Google`` required, as Yandex's docs show). The one-to-one NAT address is
``networkInterfaces[0].accessConfigs[0].externalIp`` of the recursive instance document (GCE's
JSON names). Yandex documents only internal IPv6 addresses, so a public IPv6 is left to the
fallbacks. Yandex does not document that its answers carry ``Metadata-Flavor`` back, so — unlike
GCP — that header is not required on the answer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode.discovery.dmi import Dmi
from k3snode.discovery.providers.common import Answer, Reading, as_list, dig, parse_json

if TYPE_CHECKING:
    from k3snode.discovery.http import Client


ID = "yandex"
BASE = "http://169.254.169.254"
PATH = "/computeMetadata/v1/instance/?recursive=true&alt=json"
HEADERS = {"Metadata-Flavor": "Google"}


def recognise(dmi: Dmi) -> bool:
    # (unverified against Yandex's docs: the DMI vendor of its guests as users report it)
    return dmi.get("sys_vendor") == "Yandex" or dmi.get("bios_vendor") == "Yandex"


def fetch(client: Client, ds: object = None) -> Answer:
    data = parse_json(client.get(PATH, HEADERS), PATH)
    r = Reading(ID)
    nic = dig(data, "networkInterfaces", 0)
    configs = as_list(dig(nic, "accessConfigs"))
    value = dig(configs, 0, "externalIp")
    if value:
        r.offer("ipv4", value, "networkInterfaces[0].accessConfigs[0].externalIp")
    else:
        r.say_none("ipv4", "no one-to-one NAT address (accessConfigs empty)")
    r.notes.append("yandex metadata: public IPv6 is not published by Yandex Cloud")
    r.private(dig(nic, "ip"))
    return r.answer()
