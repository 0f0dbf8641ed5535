"""IBM Cloud VPC: the instance metadata service at 169.254.169.254, **off by default** (enable it
per instance). A token first — ``PUT /instance_identity/v1/token?version=…`` with
``Metadata-Flavor: ibm`` and a JSON body naming its lifetime, answering ``{"access_token": …}`` —
then ``GET /metadata/v1/instance?version=…`` with ``Authorization: Bearer <token>``.

The instance document has the private address (``primary_network_interface.primary_ip``) but no
public one: a VPC floating IP is 1:1 NAT outside the guest and is not in the metadata. So both
families are left to the fallbacks (the interface has only the private address; echo services, if
enabled, see the floating IP — or set ``external_ips``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from k3snode.discovery.dmi import Dmi
from k3snode.discovery.errors import MetadataError
from k3snode.discovery.providers.common import (
    Answer,
    Reading,
    dig,
    forget_token,
    parse_json,
    session_token,
    unexpected,
)

if TYPE_CHECKING:
    from k3snode.discovery.http import Client


ID = "ibm"
BASE = "http://169.254.169.254"
VERSION = "2022-03-01"  # the first API version with the identity token
TOKEN = f"/instance_identity/v1/token?version={VERSION}"
INSTANCE = f"/metadata/v1/instance?version={VERSION}"
UNREACHABLE_HINT = (
    "IBM Cloud VPC's metadata service is off by default: enable it on the instance "
    "(ibmcloud is instance-update INSTANCE --metadata-service true)"
)


def recognise(dmi: Dmi) -> bool:
    return dmi.get("chassis_vendor").startswith("IBM:Cloud Compute Server")


TOKEN_TTL = 300  # seconds; kept in the daemon's discovery session until a minute before


def _token(client: Client) -> tuple[str, float]:
    resp = client.request(
        "PUT",
        TOKEN,
        {
            "Metadata-Flavor": "ibm",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
        body=json.dumps({"expires_in": TOKEN_TTL}).encode(),
    )
    if resp.status in (401, 403):
        raise MetadataError(f"PUT {TOKEN}: HTTP {resp.status} (metadata service refused)")
    token = dig(parse_json(resp, f"PUT {TOKEN}"), "access_token")
    if not isinstance(token, str) or not token:
        raise unexpected(resp, f"PUT {TOKEN}: no access_token")
    return token, TOKEN_TTL


def fetch(client: Client, ds: object = None) -> Answer:
    token, kept = session_token(client, ID, lambda: _token(client))
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    resp = client.get(INSTANCE, headers)
    if resp.status == 401 and kept:  # the kept token is no longer valid: a new one, once
        forget_token(client, ID)
        token, _ = session_token(client, ID, lambda: _token(client))
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        resp = client.get(INSTANCE, headers)
    if resp.status == 401:
        raise MetadataError(f"GET {INSTANCE}: 401 although a token was sent")
    data = parse_json(resp, INSTANCE)
    r = Reading(ID)
    r.notes.append(
        "ibm metadata: a VPC floating IP is not published in IBM Cloud's metadata; "
        "public addresses come from the interface, echo services (if enabled) or external_ips"
    )
    r.private(dig(data, "primary_network_interface", "primary_ip", "address"))
    return r.answer()
