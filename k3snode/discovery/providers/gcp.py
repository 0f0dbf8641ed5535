"""Google Compute Engine: ``Metadata-Flavor: Google`` both ways (sent, and checked on the answer).

``watch`` is GCP's change signal: Google's metadata server holds a request with
``wait_for_change=true`` until the answer differs from ``last_etag`` (or ``timeout_sec`` passes),
the documented way to watch metadata. The daemon runs it in a thread (``k3snode/daemon/longpoll.py``) and
asks for a pass whenever it reports a change; discovery then reads the addresses as always.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable

from k3snode import bounded
from k3snode.discovery.dmi import Dmi
from k3snode.discovery.errors import MetadataError
from k3snode.discovery.providers.common import Answer, Reading

if TYPE_CHECKING:
    from k3snode.discovery.http import Client, Response


ID = "gcp"
CLOUD_INIT = ("gce",)  # cloud-init's cloud-id / cloud_name for this cloud
BASE = "http://169.254.169.254"
NIC = "/computeMetadata/v1/instance/network-interfaces/0"
HEADERS = {"Metadata-Flavor": "Google"}
WATCH_PATH = "/computeMetadata/v1/instance/network-interfaces/"
LONG_POLL_TIMEOUT = 300  # timeout_sec of one held request; a change answers it at once
# A GCE ETag is 16 hex digits; anything else (spaces, quotes, a megabyte) is refused rather than
# sent back in the next URL.
_ETAG = re.compile(r"[0-9A-Za-z_.:-]{1,128}")


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
    if not client.brief:  # informational: not asked by the daemon's polls
        resp = _get(client, f"{NIC}/ip")
        if resp.status == 200:
            r.private(resp.text)
    return r.answer()


class Watch:
    """``wait(timeout)`` → a reason when the interfaces changed since the last call, else "";
    MetadataError when the answer is unusable.

    ``client`` is the one HTTP client with no overall deadline (each request has its own): no
    proxy, no redirects (a 302 is an error, so ``Metadata-Flavor: Google`` never goes to another
    host), bounded body and time."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.etag = ""

    def wait(self, timeout: float = LONG_POLL_TIMEOUT) -> str:
        seconds = max(1, int(timeout))
        query = "?recursive=true&alt=json"
        if self.etag:
            query += f"&wait_for_change=true&timeout_sec={seconds}&last_etag={self.etag}"
        try:
            resp = self.client.get(WATCH_PATH + query, HEADERS, retry=False,
                                   read_timeout=seconds + 10)  # fmt: skip
        except MetadataError as e:
            raise MetadataError(f"GCP metadata long-poll: {e}") from None
        if resp.status != 200:
            raise MetadataError(
                f"GCP metadata long-poll: HTTP {resp.status} (redirects not followed)"
            )
        if resp.header("Metadata-Flavor") != "Google":
            raise MetadataError("answer without Metadata-Flavor: Google (not GCE)")
        etag = resp.header("ETag")
        if not etag:
            raise MetadataError("GCP metadata long-poll: no ETag in the answer")
        if not _ETAG.fullmatch(etag):
            raise MetadataError(f"GCP metadata long-poll: invalid ETag {etag[:40]!r}")
        first = not self.etag
        changed = etag != self.etag
        self.etag = etag
        if first or not changed:
            return ""
        return f"GCP metadata changed ({_summary(resp.body)})"


def watch(client: Client) -> Callable[[float], str]:
    """The change signal: a ``wait(timeout)`` that holds a request until the interfaces change."""
    return Watch(client).wait


def _summary(body: bytes) -> str:
    try:
        nics = bounded.load_json(body)
        ips = [
            ac.get("externalIp", "")
            for nic in nics
            for ac in nic.get("accessConfigs", [])
            if ac.get("externalIp")
        ]
    except (ValueError, AttributeError, TypeError):
        return "network interfaces"
    return "external IP " + ", ".join(ips) if ips else "network interfaces"
