"""Amazon EC2: IMDSv2 (token PUT, then GETs carrying it); IMDSv1 only when allowed.

A token PUT that never answers while GETs do is the hop-limit trap (the PUT reply is sent with
IP TTL = HttpPutResponseHopLimit, so one extra hop — a bridged container — drops it): that ends
in an error naming the hop limit, never in a long wait or a silent IMDSv1 fallback.

The token is kept in the client's ``memo`` (the daemon's discovery session) until shortly before
its TTL ends, so a poll is two GETs (public IPv4 and IPv6; the private IPv4, informational, only
when not ``brief``). A 401 with a kept token (the instance was stopped and started, the token
revoked) asks for a new token once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode.discovery.dmi import Dmi
from k3snode.discovery.errors import MetadataError, MetadataTimeout
from k3snode.discovery.providers.common import Answer, Reading, unexpected

if TYPE_CHECKING:
    from k3snode.discovery.http import Client


ID = "aws"
CLOUD_INIT = ("aws", "aws-china", "aws-gov")  # cloud-init's cloud-id / cloud_name for this cloud
BASE = "http://169.254.169.254"
BASE6 = "http://[fd00:ec2::254]"  # asked when the IPv4 one is unreachable (IPv6-only)
TOKEN_PATH = "/latest/api/token"
TOKEN_TTL = 21600  # seconds (AWS's maximum); a token is reused across polls until near its end
TOKEN_RENEW = 300  # a new one is asked this long before the old one expires
TOKEN_TIMEOUT = 2.0
PATHS = {
    "ipv4": "/latest/meta-data/public-ipv4",
    "ipv6": "/latest/meta-data/ipv6",
}
PRIVATE = "/latest/meta-data/local-ipv4"
HOP_LIMIT_HINT = (
    "the instance's metadata hop limit is probably too low for this network path (a container "
    "adds a hop): aws ec2 modify-instance-metadata-options --http-put-response-hop-limit 2"
)


def recognise(dmi: Dmi) -> bool:
    if dmi.get("sys_vendor") == "Amazon EC2" or dmi.get("bios_vendor") == "Amazon EC2":
        return True
    uuid, serial = dmi.get("product_uuid").lower(), dmi.get("product_serial").lower()
    if uuid.startswith("ec2") and uuid == serial:
        return True
    return "amazon" in dmi.get("bios_version").lower()


def _token(client: Client, allow_v1: bool) -> str | None:
    """An IMDSv2 token (a kept one while it is fresh); None when IMDSv1 is to be used (only if
    allowed)."""
    key = f"aws-token {client.where}"
    kept = client.memo.get(key)
    if kept and kept[1] - client.clock() > TOKEN_RENEW:
        return kept[0]
    client.memo.pop(key, None)
    try:
        resp = client.request(
            "PUT",
            TOKEN_PATH,
            {"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL)},
            read_timeout=TOKEN_TIMEOUT,
        )
    except MetadataTimeout as e:
        if allow_v1:
            return None
        raise MetadataError(_hop_limit_message(client, str(e))) from None
    if resp.status == 200 and resp.body.strip():
        token = resp.text.strip()
        client.memo[key] = (token, client.clock() + TOKEN_TTL)
        return token
    if resp.status == 403:
        raise MetadataError("the instance metadata service is disabled (403 on the token request)")
    if resp.status in (404, 405) and allow_v1:
        return None
    if resp.status in (404, 405):
        raise MetadataError(
            f"IMDSv2 token request answered HTTP {resp.status}; IMDSv1 is not allowed "
            "([discovery] allow_imdsv1)"
        )
    raise unexpected(resp, f"PUT {TOKEN_PATH}")


def _hop_limit_message(client: Client, timeout: str) -> str:
    base = f"IMDSv2 token request got no answer ({timeout})"
    try:
        probe = client.get("/latest/meta-data/", retry=False, read_timeout=1.0)
    except MetadataError:
        return f"{base}; {HOP_LIMIT_HINT}"
    return f"{base} although GET answers (HTTP {probe.status}); {HOP_LIMIT_HINT}"


def fetch(client: Client, ds: object = None) -> Answer:
    allow_v1 = bool(getattr(ds, "allow_imdsv1", False))
    key = f"aws-token {client.where}"
    kept = key in client.memo
    token = _token(client, allow_v1)
    headers = {"X-aws-ec2-metadata-token": token} if token else {}
    r = Reading(ID)
    for fam, path in PATHS.items():
        resp = client.get(path, headers)
        if resp.status == 401 and token and kept:  # a kept token no longer valid: a new one
            client.memo.pop(key, None)
            kept = False
            token = _token(client, allow_v1)
            headers = {"X-aws-ec2-metadata-token": token} if token else {}
            resp = client.get(path, headers)
        if resp.status == 401:
            if token:
                raise MetadataError(f"GET {path}: 401 although a token was sent (expired?)")
            raise MetadataError(
                f"GET {path}: IMDSv1 refused (401): this instance requires IMDSv2, whose token "
                f"request failed; {HOP_LIMIT_HINT}"
            )
        if resp.status == 403:
            raise MetadataError("the instance metadata service is disabled (403)")
        r.text_leaf(fam, resp, path)
    if not client.brief:
        resp = client.get(PRIVATE, headers)
        if resp.status == 200:
            r.private(resp.text)
    return r.answer()
