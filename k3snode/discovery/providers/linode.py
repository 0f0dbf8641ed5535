"""Linode / Akamai: token PUT, then ``/v1/network`` as JSON; every value is CIDR text and an empty
list means none. The token (300 s) is kept in the daemon's discovery session until a minute
before it expires."""

from __future__ import annotations

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


ID = "linode"
CLOUD_INIT = ("akamai",)  # cloud-init's cloud-id / cloud_name for this cloud
BASE = "http://169.254.169.254"
BASE6 = "http://[fd00:a9fe:a9fe::1]"  # asked when the IPv4 one is unreachable (IPv6-only)


def recognise(dmi: Dmi) -> bool:
    return dmi.get("sys_vendor") in ("Linode", "Akamai")


TOKEN_TTL = 300


def _token(client: Client) -> tuple[str, float]:
    resp = client.request("PUT", "/v1/token", {"Metadata-Token-Expiry-Seconds": str(TOKEN_TTL)})
    if resp.status != 200 or not resp.body.strip():
        raise unexpected(resp, "PUT /v1/token")
    return resp.text.strip(), TOKEN_TTL


def fetch(client: Client, ds: object = None) -> Answer:
    token, kept = session_token(client, ID, lambda: _token(client))
    resp = client.get("/v1/network", {"Metadata-Token": token, "Accept": "application/json"})
    if resp.status == 401 and kept:  # the kept token is no longer valid: a new one, once
        forget_token(client, ID)
        token, _ = session_token(client, ID, lambda: _token(client))
        resp = client.get("/v1/network", {"Metadata-Token": token, "Accept": "application/json"})
    if resp.status == 401:
        raise MetadataError("GET /v1/network: 401 although a token was sent")
    data = parse_json(resp, "/v1/network")
    r = Reading(ID)
    public = dig(data, "ipv4", "public")
    if isinstance(public, list) and public:
        for value in public:
            if r.offer("ipv4", value, "ipv4.public"):
                break
    else:
        r.say_none("ipv4", "ipv4.public empty")
    slaac = dig(data, "ipv6", "slaac")
    if slaac:
        r.offer("ipv6", slaac, "ipv6.slaac")
    else:
        r.say_none("ipv6", "ipv6.slaac empty")
    r.private(dig(data, "ipv4", "private", 0))
    return r.answer()
