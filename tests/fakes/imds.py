"""A fake cloud metadata service: one real HTTP server that answers like any of k3snode's HTTP
metadata clouds (every provider but ``vmware``, whose guestinfo is read with ``vmware-rpctool``:
see ``tests/stubs/vmware-rpctool``).

Bodies are shaped like the real ones (AWS's XHTML 404, Google's HTML 404 and ``Metadata-Flavor``
header, Azure's ``format=text`` leaves and load-balancer JSON, DigitalOcean's upper-case
uncompressed IPv6, Hetzner's YAML, Linode's CIDR strings, OpenStack's empty 200…), and the
services' rules are enforced (IMDSv2 token and TTL header, ``Metadata-Flavor: Google``,
``Metadata: true`` + ``api-version``, ``Authorization: Bearer Oracle``, Linode's token).

State (all changeable at runtime)::

    provider      aws gcp azure digitalocean hetzner oracle alibaba openstack linode vultr
                  scaleway exoscale upcloud ibm tencent yandex huawei ovh
    ipv4, ipv6    the public addresses; null/"" = the node has none (answered the provider's way:
                  404, empty body, "", empty list…); any text, e.g. a private address, is served as is
    private_ipv4  the private address
    mode          ok | disabled (403 everywhere) | token-hang (token PUT accepted, never answered)
                  | flaky (the first ``fail_count`` requests get 503) | html (GETs answer a 200 HTML
                  page) | huge (GETs answer 4 MiB) | slow (GETs answer one byte a second)
                  | garbage (GETs answer odd JSON/YAML/bytes, see ``GARBAGE``)
    imdsv1        AWS: answer token-less GETs (default false: 401 as with HttpTokens=required)
    fail_count    for mode=flaky (default 2)
    garbage       for mode=garbage: which of ``GARBAGE`` every GET answers (an index)
    delay         seconds to wait before answering any request (default 0): a slow but working
                  service, e.g. to see a daemon become ready before discovery finishes
    floating_ipv4 UpCloud floating IP / DigitalOcean reserved IP (must never be taken)
    basic_sku     Azure: the public IPv4 is in the instance document (default false: only on
                  the load-balancer endpoint, as with today's Standard SKU)
    gone_count    Azure: the first ``gone_count`` requests answer 410 Gone (IMDS not ready yet)
    retry_after   a ``Retry-After`` header (seconds) on the 410/429/503 answers

Where each new cloud's bodies come from (and what is not verified) is noted at its route.

In a test::

    from fakes.imds import FakeIMDS
    with FakeIMDS("aws", ipv4="3.120.45.10") as fake:        # 127.0.0.1, a free port
        run_k3snode("detect", "--json", "--metadata-endpoint", fake.url, ...)
        fake.set(ipv4=None)                                  # change the answer at runtime
        assert fake.requests[0].method == "PUT"              # every request is recorded

Standalone (e.g. inside a network namespace, at the production address)::

    /usr/bin/python3 tests/fakes/imds.py --provider aws --bind 169.254.169.254:80 \\
        --ipv4 3.120.45.10 --ipv6 2a05:d014:abc:d00::10 [--mode slow] [--state-file F.json]

and change it while it runs, either through the control endpoint on the same server::

    curl -X POST -d '{"ipv4": "3.120.45.11"}' http://169.254.169.254/__fake__/state
    curl http://169.254.169.254/__fake__/state         # state as JSON
    curl http://169.254.169.254/__fake__/requests      # recorded requests as JSON
    curl -X DELETE http://169.254.169.254/__fake__/requests

or by writing a JSON object to ``--state-file`` (re-read whenever its mtime changes; its keys are
merged into the state); ``--log-file`` appends every request as a JSON line. Those two files work
across network namespaces, where the control endpoint is out of the test's reach;
``FakeIMDSProcess`` wraps them::

    with FakeIMDSProcess("aws", netns="k3sn123", bind="169.254.169.254:80", ipv4="3.120.45.10") as fake:
        ...                                  # (the namespace needs 169.254.169.254 on an interface,
        fake.set(ipv4="3.120.45.11")         #  e.g. ``ip -n k3sn123 addr add 169.254.169.254/32 dev lo``)
        assert fake.requests()[0]["method"] == "PUT"

It prints ``listening on HOST:PORT`` once ready. Stdlib only, Python 3.9+.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import select
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MODES = ("ok", "disabled", "token-hang", "flaky", "html", "huge", "slow", "garbage")
# mode=garbage: GETs answer one of these (``garbage`` = index), whatever the document should be
GARBAGE = (
    "[]",
    "null",
    '"a string"',
    "42",
    "\x00\xff\xfe not even text",
    '{"interfaces": 5, "network": [], "public_ip": 7, "ipv4": {"public": [1, null]},'
    ' "ipv6": {"slaac": 3}, "public_ips": [{"family": ["inet"], "address": 5}], "private_ip": []}',
    '{"interfaces": {"public": [{"ipv4": "x", "ipv6": []}], "private": 3},'
    ' "network": {"interfaces": [{"type": "public", "ip_addresses": [{"family": {}}, 5]}]}}',
    '{"loadbalancer": {"publicIpAddresses": [7, {"frontendIpAddress": []}]}}',
    '[{"ipv6Addresses": [null, 5, "x"], "privateIp": 5}]',
    '{"networks": [5, {"type": 6, "ip_address": []}]}',
    "- a\n- yaml\n- list\n",
    "public-ipv4: [1, 2]\nnetwork-config: {config: [{type: physical, subnets: [{ipv6: true, address: [1]}]}]}\n",
)

# Realistic defaults: addresses from each provider's own ranges (they pass a strict public check).
DEFAULTS: dict[str, dict[str, str | None]] = {
    "aws": {"ipv4": "3.120.45.10", "ipv6": "2a05:d014:abc:d00::10", "private_ipv4": "172.31.5.10"},
    "gcp": {"ipv4": "34.77.12.34", "ipv6": "2600:1900:4010:ab::5", "private_ipv4": "10.132.0.5"},
    "azure": {"ipv4": "20.50.1.2", "ipv6": None, "private_ipv4": "10.0.0.4"},
    "digitalocean": {"ipv4": "164.90.1.2", "ipv6": "2a03:b0c0:3:d0::1234:5001",
                     "private_ipv4": "10.114.0.2"},
    "hetzner": {"ipv4": "5.75.1.2", "ipv6": "2a01:4f8:c17:1234::1", "private_ipv4": "10.0.0.2"},
    "oracle": {"ipv4": None, "ipv6": "2603:c020:4010:ab00::10", "private_ipv4": "10.0.0.5"},
    "alibaba": {"ipv4": "47.88.1.2", "ipv6": "2408:4005:3ab:1200::5", "private_ipv4": "172.16.0.5"},
    "openstack": {"ipv4": "185.41.1.2", "ipv6": None, "private_ipv4": "10.0.0.7"},
    "linode": {"ipv4": "172.233.211.141", "ipv6": "2600:3c06::f03c:94ff:fe12:3456",
               "private_ipv4": "192.168.130.2"},
    "vultr": {"ipv4": "45.76.1.2", "ipv6": "2001:19f0:5:28a7:5400:3ff:fe1b:4eca",
              "private_ipv4": "10.1.96.3"},
    "scaleway": {"ipv4": "51.15.1.2", "ipv6": "2001:bc8:1640:1234::1", "private_ipv4": "10.64.0.3"},
    "exoscale": {"ipv4": "89.145.160.5", "ipv6": None, "private_ipv4": None},
    "upcloud": {"ipv4": "94.237.1.2", "ipv6": "2a04:3540:1000:310::5", "private_ipv4": "10.5.0.2"},
    # IBM Cloud VPC never serves a public address (a floating IP is not in its metadata)
    "ibm": {"ipv4": None, "ipv6": None, "private_ipv4": "10.240.0.4"},
    "tencent": {"ipv4": "43.135.1.2", "ipv6": None, "private_ipv4": "10.104.13.59"},
    "yandex": {"ipv4": "158.160.50.228", "ipv6": None, "private_ipv4": "10.128.0.5"},
    "huawei": {"ipv4": "119.8.1.2", "ipv6": None, "private_ipv4": "192.168.0.5"},
    # OVHcloud Ext-Net: the public IPv4 is the NIC's own (Nova's local-ipv4), no floating IP
    "ovh": {"ipv4": "51.68.1.2", "ipv6": "2001:41d0:304:200::abcd", "private_ipv4": None},
}  # fmt: skip
IBM_TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImZha2UifQ.eyJzdWIiOiJmYWtlIn0.ZmFrZQ"

AWS_TOKEN = "AQAEAFakeTokenFakeTokenFakeTokenFakeToken=="
ALIBABA_TOKEN = "AliyunFakeToken=="
LINODE_TOKEN = "linode-fake-token-0123456789abcdef"
MAC = "02:42:ac:11:00:02"
AWS_404 = """<?xml version="1.0" encoding="iso-8859-1"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>404 - Not Found</title>
 </head>
 <body>
  <h1>404 - Not Found</h1>
 </body>
</html>
"""
GOOGLE_404 = (
    "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1"
    "</title>\n  <p><b>404.</b> <ins>That\u2019s an error.</ins>\n  <p>The requested URL <code>"
    "{path}</code> was not found on this server.  <ins>That\u2019s all we know.</ins>\n"
)
PORTAL_HTML = (
    "<!DOCTYPE html><html><head><title>Wi-Fi login</title></head><body><h1>Welcome</h1>"
    "<p>Please sign in to continue.</p></body></html>\n"
)

HANG = object()  # a route result: accept the request, never answer


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    client: str = ""


Reply = tuple  # (status, content-type, body, extra headers) or HANG


def _text(body: str | None, status: int = 200) -> tuple:
    return (status, "text/plain", body or "", {})


def _json(data: Any, status: int = 200) -> tuple:
    return (status, "application/json", json.dumps(data, indent=2), {})


def _uncompressed_upper(v6: str) -> str:
    try:
        return ipaddress.IPv6Address(v6).exploded.upper()
    except ValueError:
        return v6


def _zero_padded(v6: str) -> str:
    """Vultr writes groups zero-padded ("...:5400:03ff:...")."""
    try:
        return ipaddress.IPv6Address(v6).exploded
    except ValueError:
        return v6


class FakeState:
    """The state and the request log; thread-safe."""

    def __init__(self, provider: str, **state: Any) -> None:
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}")
        self.lock = threading.Lock()
        self.data: dict[str, Any] = {
            "provider": provider,
            "mode": "ok",
            "imdsv1": False,
            "fail_count": 2,
            "floating_ipv4": None,
            "basic_sku": False,
            "garbage": 0,
            "delay": 0,
            "gone_count": 0,
            "retry_after": None,
            **DEFAULTS[provider],
        }
        self.data.update(state)
        self.log: list[Request] = []
        self.served = 0  # metadata requests seen (for mode=flaky)
        self.state_file: str | None = None
        self.log_file: str | None = None  # every request appended as a JSON line
        self._mtime: float | None = None

    def snapshot(self) -> dict[str, Any]:
        self._reload()
        with self.lock:
            return dict(self.data)

    def update(self, changes: dict[str, Any]) -> None:
        with self.lock:
            if "provider" in changes and changes["provider"] not in PROVIDERS:
                raise ValueError(f"unknown provider {changes['provider']!r}")
            if "mode" in changes and changes["mode"] not in MODES:
                raise ValueError(f"unknown mode {changes['mode']!r}")
            if "provider" in changes and changes["provider"] != self.data["provider"]:
                self.data.update(DEFAULTS[changes["provider"]])
            self.data.update(changes)

    def _reload(self) -> None:
        if not self.state_file:
            return
        try:
            mtime = os.stat(self.state_file).st_mtime
            if mtime == self._mtime:
                return
            with open(self.state_file) as f:
                changes = json.load(f)
            self._mtime = mtime
        except (OSError, ValueError):
            return
        if isinstance(changes, dict):
            self.update(changes)


# ---------------------------------------------------------------------------------------------
# The providers' answers: route(state, method, path, query, headers) -> Reply


def _aws(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    if s["mode"] == "disabled":
        return _text("Forbidden", 403)
    if path == "/latest/api/token":
        if method != "PUT":
            return _text("Method Not Allowed", 405)
        ttl = h.get("x-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return _text("Bad Request", 400)
        if s["mode"] == "token-hang":
            return HANG
        return (200, "text/plain", AWS_TOKEN, {"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": ttl})
    token = h.get("x-aws-ec2-metadata-token")
    if (token is not None and token != AWS_TOKEN) or (token is None and not s["imdsv1"]):
        return (401, "text/plain", "", {})
    leaves = {
        "/latest/meta-data/public-ipv4": s["ipv4"],
        "/latest/meta-data/ipv6": s["ipv6"],
        "/latest/meta-data/local-ipv4": s["private_ipv4"],
        "/latest/meta-data/instance-id": "i-0123456789abcdef0",
        "/latest/meta-data/mac": MAC,
        "/latest/meta-data/": "ami-id\ninstance-id\nlocal-ipv4\nmac\npublic-ipv4\nipv6",
    }
    value = leaves.get(path)
    if not value:
        return (404, "text/html", AWS_404, {})
    return _text(value)


def _gcp(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    g = {"Metadata-Flavor": "Google"}
    if s["mode"] == "disabled":
        return (403, "text/html", "Forbidden", g)
    if h.get("metadata-flavor") != "Google":
        return (403, "text/html", "Missing Metadata-Flavor:Google header.", g)
    nic = "/computeMetadata/v1/instance/network-interfaces/0"
    leaves = {
        f"{nic}/access-configs/0/external-ip": s["ipv4"],
        f"{nic}/ipv6s": s["ipv6"] and s["ipv6"] + "\n",
        f"{nic}/ip": s["private_ipv4"],
    }
    value = leaves.get(path)
    if not value:
        return (404, "text/html; charset=UTF-8", GOOGLE_404.format(path=path), g)
    return (200, "application/text", value, g)


def _azure(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    if s["mode"] == "disabled":
        return _json({"error": "Forbidden"}, 403)
    if s["served"] <= int(s["gone_count"]):  # IMDS not ready yet (Azure documents 410 Gone)
        return _json({"error": "Gone"}, 410)
    if h.get("metadata") != "true" or "x-forwarded-for" in h:
        return _json({"error": "Bad request. Required metadata header not specified"}, 400)
    if "api-version" not in q:
        return _json({"error": "Bad request. api-version was not specified in the request."}, 400)
    ip = "/metadata/instance/network/interface/0/ipv4/ipAddress/0"
    if path in (f"{ip}/publicIpAddress", f"{ip}/privateIpAddress"):
        if q.get("format") != "text":
            return _json({"error": "Bad request. Query parameter format=text required."}, 400)
        if path.endswith("publicIpAddress"):
            return _text(s["ipv4"] if s["basic_sku"] else "")
        return _text(s["private_ipv4"])
    if path == "/metadata/loadbalancer":
        if not s["ipv4"] or s["basic_sku"]:
            return _json({"error": "No load balancer metadata found"}, 404)
        return _json({"loadbalancer": {
            "publicIpAddresses": [{"frontendIpAddress": s["ipv4"],
                                   "privateIpAddress": s["private_ipv4"]}],
            "inboundRules": [], "outboundRules": []}})  # fmt: skip
    return _json({"error": "Not found"}, 404)


def _digitalocean(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    if s["mode"] == "disabled":
        return _text("Forbidden", 403)
    public: dict[str, Any] = {"mac": MAC, "type": "public"}
    if s["ipv4"]:
        public["ipv4"] = {
            "ip_address": s["ipv4"],
            "netmask": "255.255.240.0",
            "gateway": "164.90.0.1",
        }
        public["anchor_ipv4"] = {
            "ip_address": "10.19.0.5",
            "netmask": "255.255.0.0",
            "gateway": "10.19.0.1",
        }
    if s["ipv6"]:
        public["ipv6"] = {"ip_address": _uncompressed_upper(s["ipv6"]), "cidr": 64,
                          "gateway": "2A03:B0C0:0003:00D0:0000:0000:0000:0001"}  # fmt: skip
    private = {"mac": "02:42:ac:11:00:03", "type": "private",
               "ipv4": {"ip_address": s["private_ipv4"], "netmask": "255.255.240.0", "gateway": "0.0.0.0"}}  # fmt: skip
    doc = {
        "droplet_id": 2756294,
        "hostname": "node-1",
        "interfaces": {"public": [public], "private": [private]},
        "floating_ip": {"ipv4": {"active": bool(s["floating_ipv4"])}},
        "reserved_ip": {
            "ipv4": {"active": bool(s["floating_ipv4"]), "ip_address": s["floating_ipv4"]}
        },
        "region": "ams3",
    }
    if path == "/metadata/v1.json":
        return _json(doc)
    leaf = {
        "/metadata/v1/interfaces/public/0/ipv4/address": s["ipv4"],
        "/metadata/v1/interfaces/public/0/ipv6/address": s["ipv6"]
        and _uncompressed_upper(s["ipv6"]),
        "/metadata/v1/interfaces/private/0/ipv4/address": s["private_ipv4"],
    }.get(path)
    return _text(leaf) if leaf else _text("not found", 404)


def _hetzner(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    if s["mode"] == "disabled":
        return _text("Forbidden", 403)
    v6 = (
        f"""    - address: {s["ipv6"]}/64
      dns_nameservers:
      - 2a01:4ff:ff00::add:2
      - 2a01:4ff:ff00::add:1
      gateway: fe80::1
      ipv6: true
      type: static
"""
        if s["ipv6"]
        else ""
    )
    private = (
        f"- ip: {s['private_ipv4']}\n  alias_ips: []\n  interface_num: 1\n"
        if s["private_ipv4"]
        else "[]\n"
    )
    doc = f"""availability-zone: fsn1-dc14
hostname: node-1
instance-id: 42424242
local-ipv4: ''
network-config:
  config:
  - mac_address: 96:00:00:12:34:56
    name: eth0
    subnets:
    - dns_nameservers:
      - 185.12.64.2
      - 185.12.64.1
      ipv4: true
      type: dhcp
{v6}    type: physical
  version: 1
private-networks: {"" if s["private_ipv4"] else "[]"}
{private if s["private_ipv4"] else ""}public-ipv4: {s["ipv4"] or "''"}
public-keys: []
region: eu-central
vendor_data: '#cloud-config'
"""
    if path in ("/hetzner/v1/metadata", "/hetzner/v1/metadata/"):
        return (200, "text/yaml", doc, {})
    if path == "/hetzner/v1/metadata/public-ipv4":
        return _text(s["ipv4"]) if s["ipv4"] else _text("", 404)
    return _text("not found", 404)


def _oracle(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    if s["mode"] == "disabled":
        return _text("Forbidden", 403)
    if path.startswith("/opc/v2/") and h.get("authorization") != "Bearer Oracle":
        return _json({"code": "NotAuthorized", "message": "Authorization failed"}, 401)
    if path in ("/opc/v2/vnics/", "/opc/v1/vnics/"):
        return _json([{
            "vnicId": "ocid1.vnic.oc1.eu-frankfurt-1.abtheljr", "privateIp": s["private_ipv4"],
            "vlanTag": 0, "macAddr": MAC, "virtualRouterIp": "10.0.0.1",
            "subnetCidrBlock": "10.0.0.0/24", "nicIndex": 0,
            "ipv6SubnetCidrBlock": "2603:c020:4010:ab00::/64",
            "ipv6VirtualRouterIp": "fe80::200:17ff:fe01:9b1",
            "ipv6Addresses": [s["ipv6"]] if s["ipv6"] else []}])  # fmt: skip
    if path == "/opc/v2/instance/":
        return _json({"id": "ocid1.instance.oc1..fake", "region": "eu-frankfurt-1"})
    return _json({"code": "NotFound", "message": "Not Found"}, 404)


def _alibaba(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    if s["mode"] == "disabled":
        return _text("Forbidden", 403)
    if path == "/latest/api/token":
        if method != "PUT":
            return _text("", 405)
        if s["mode"] == "token-hang":
            return HANG
        return _text(ALIBABA_TOKEN)
    token = h.get("x-aliyun-ecs-metadata-token")
    if token is not None and token != ALIBABA_TOKEN:
        return _text("", 401)
    md = "/latest/meta-data"
    leaves = {
        f"{md}/public-ipv4": s["ipv4"],
        f"{md}/eipv4": s["floating_ipv4"],
        f"{md}/private-ipv4": s["private_ipv4"],
        f"{md}/mac": MAC,
        f"{md}/network/interfaces/macs/{MAC}/ipv6s": s["ipv6"] and f"[{s['ipv6']}]",
    }
    value = leaves.get(path)
    return _text(value) if value else (404, "text/html", "<html>404 Not Found</html>", {})


def _openstack(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    if s["mode"] == "disabled":
        return _text("Forbidden", 403)
    if path == "/latest/meta-data/public-ipv4":
        return _text(s["ipv4"] or "")  # nova: no floating IP => 200 with an empty body
    if path == "/latest/meta-data/local-ipv4":
        return _text(s["private_ipv4"] or "")
    if path == "/openstack/latest/network_data.json":
        nets: list[dict[str, Any]] = [{"id": "network0", "type": "ipv4", "link": "tap1",
                                       "ip_address": s["private_ipv4"], "netmask": "255.255.255.0"}]  # fmt: skip
        if s["ipv6"]:
            nets.append({"id": "network1", "type": "ipv6", "link": "tap1",
                         "ip_address": s["ipv6"], "netmask": "ffff:ffff:ffff:ffff::"})  # fmt: skip
        return _json({"links": [{"id": "tap1", "type": "ovs", "ethernet_mac_address": MAC}],
                      "networks": nets, "services": []})  # fmt: skip
    return (404, "text/html", "<html><body><h1>404 Not Found</h1></body></html>", {})


def _linode(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    if s["mode"] == "disabled":
        return _text("Forbidden", 403)
    if path == "/v1/token":
        if method != "PUT" or not h.get("metadata-token-expiry-seconds", "").isdigit():
            return _json({"errors": [{"reason": "Bad Request"}]}, 400)
        if s["mode"] == "token-hang":
            return HANG
        return _text(LINODE_TOKEN)
    if h.get("metadata-token") != LINODE_TOKEN:
        return _json({"errors": [{"reason": "Unauthorized"}]}, 401)
    if path == "/v1/network":
        return _json({
            "interfaces": [{"label": None, "purpose": "public", "ipam_address": None}],
            "ipv4": {"public": [f"{s['ipv4']}/32"] if s["ipv4"] else [],
                     "private": [f"{s['private_ipv4']}/17"] if s["private_ipv4"] else [],
                     "shared": []},
            "ipv6": {"slaac": f"{s['ipv6']}/128" if s["ipv6"] else "",
                     "ranges": [], "link_local": "fe80::f03c:94ff:fe12:3456/128",
                     "shared_ranges": []}})  # fmt: skip
    return _json({"errors": [{"reason": "Not found"}]}, 404)


def _vultr(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    if s["mode"] == "disabled":
        return _text("Forbidden", 403)
    public: dict[str, Any] = {"mac": MAC, "network-type": "public",
                              "ipv4": {"address": s["ipv4"] or "", "gateway": "45.76.0.1",
                                       "netmask": "255.255.254.0", "additional": []}}  # fmt: skip
    if s["ipv6"]:
        public["ipv6"] = {"address": _zero_padded(s["ipv6"]), "network": "2001:19f0:5:28a7::",
                          "prefix": "64", "additional": []}  # fmt: skip
    doc = {"instanceid": "a747bfz6385e", "hostname": "node-1", "region": {"regioncode": "EWR"},
           "interfaces": [public, {"mac": "5a:00:03:1b:4e:cb", "network-type": "private",
                                   "ipv4": {"address": s["private_ipv4"] or "",
                                            "netmask": "255.255.240.0"}}]}  # fmt: skip
    if path == "/v1.json":
        return _json(doc)
    if path == "/v1/interfaces/0/ipv4/address" and s["ipv4"]:
        return _text(s["ipv4"])
    return _text("Not Found", 404)


def _scaleway(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    if s["mode"] == "disabled":
        return _text("Forbidden", 403)
    if path == "/conf" and q.get("format") == "json":
        ips = []
        if s["ipv4"]:
            ips.append({"id": "e4f7", "address": s["ipv4"], "family": "inet", "dynamic": False,
                        "provisioning_mode": "dhcp", "netmask": "32", "gateway": "62.210.0.1"})  # fmt: skip
        if s["ipv6"]:
            ips.append({"id": "9bc1", "address": s["ipv6"], "family": "inet6", "dynamic": False,
                        "provisioning_mode": "slaac", "netmask": "64", "gateway": "fe80::1"})  # fmt: skip
        return _json({
            "id": "9a7e4f8c-1234-4c8e-9e1a-0123456789ab", "name": "node-1",
            "commercial_type": "DEV1-S", "hostname": "node-1",
            "private_ip": s["private_ipv4"],
            "public_ip": {"id": "e4f7", "address": s["ipv4"], "dynamic": False, "family": "inet"}
            if s["ipv4"] else None,
            "public_ips": ips,
            "ipv6": {"address": s["ipv6"], "gateway": "2001:bc8:1640:1234::", "netmask": "64"}
            if s["ipv6"] else None,
            "location": {"zone_id": "fr-par-1"}})  # fmt: skip
    if path == "/conf":
        return _text(f"ID=9a7e4f8c\nPUBLIC_IP_ADDRESS={s['ipv4'] or ''}\n")
    return _text("Not Found", 404)


def _exoscale(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    if s["mode"] == "disabled":
        return _text("Forbidden", 403)
    md = "/1.0/meta-data"
    value = {f"{md}/public-ipv4": s["ipv4"], f"{md}/local-ipv4": s["private_ipv4"],
             f"{md}/instance-id": "1f1c9a7e-1234"}.get(path)  # fmt: skip
    return _text(value) if value else (404, "text/html", "<html>404 Not Found</html>", {})


def _upcloud(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    if s["mode"] == "disabled":
        return _text("Forbidden", 403)
    public_ips = []
    if s["floating_ipv4"]:
        public_ips.append({"address": s["floating_ipv4"], "dhcp": False, "dns": None,
                           "family": "IPv4", "floating": True, "gateway": "", "network": ""})  # fmt: skip
    if s["ipv4"]:
        public_ips.append({"address": s["ipv4"], "dhcp": True, "dns": ["94.237.127.9"],
                           "family": "IPv4", "floating": False, "gateway": "94.237.0.1",
                           "network": "94.237.0.0/22"})  # fmt: skip
    if s["ipv6"]:
        public_ips.append({"address": s["ipv6"], "dhcp": True, "dns": None, "family": "IPv6",
                           "floating": False, "gateway": "2a04:3540:1000:310::1",
                           "network": "2a04:3540:1000:310::/64"})  # fmt: skip
    doc = {"cloud_name": "upcloud", "instance_id": "00133099-f1fd-4ed3-8c0b-1234567890ab",
           "hostname": "node-1", "platform": "servers", "region": "fi-hel2",
           "network": {"interfaces": [
               {"index": 1, "ip_addresses": public_ips, "mac": MAC, "network_id": "03000000-0000",
                "type": "public"},
               {"index": 2, "ip_addresses": [{"address": s["private_ipv4"], "dhcp": True,
                                              "dns": None, "family": "IPv4", "floating": False,
                                              "gateway": "10.5.0.1", "network": "10.5.0.0/22"}]
                if s["private_ipv4"] else [],
                "mac": "de:ad:be:ef:00:02", "network_id": "03c93fd8", "type": "private"}],
               "dns": ["94.237.127.9"]}}  # fmt: skip
    if path == "/metadata/v1.json":
        return _json(doc)
    return _json({"error": "not found"}, 404)


def _ovh(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    """OpenStack Nova as OVHcloud runs it: no floating IP (``public-ipv4`` empty 200), the Ext-Net
    address as ``local-ipv4``, the IPv6 a static ``network_data.json`` entry on a ``bgpovs`` link
    (the link type cloud-init's openstack helper notes as OVH's). Instance-side shape unverified."""
    if s["mode"] == "disabled":
        return _text("Forbidden", 403)
    if path == "/latest/meta-data/public-ipv4":
        return _text("")
    if path == "/latest/meta-data/local-ipv4":
        return _text(s["ipv4"] or s["private_ipv4"] or "")
    if path == "/openstack/latest/network_data.json":
        nets: list[dict[str, Any]] = [{"id": "network0", "type": "ipv4_dhcp", "link": "tap0c8e",
                                       "network_id": "b2c02fdc-ffdf-40f6-9722-533bd7058c06"}]  # fmt: skip
        if s["ipv6"]:
            nets.append({"id": "network1", "type": "ipv6", "link": "tap0c8e",
                         "ip_address": s["ipv6"], "netmask": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff80",
                         "routes": [{"network": "::", "netmask": "::",
                                     "gateway": "2001:41d0:304:200::1"}]})  # fmt: skip
        return _json({"links": [{"id": "tap0c8e", "type": "bgpovs", "mtu": 1500,
                                 "ethernet_mac_address": "fa:16:3e:31:4b:7a"}],
                      "networks": nets, "services": []})  # fmt: skip
    return (404, "text/html", "<html><body><h1>404 Not Found</h1></body></html>", {})


def _ibm(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    """IBM Cloud VPC (cloud.ibm.com/apidocs/vpc-metadata): token PUT with ``Metadata-Flavor: ibm``
    and a ``version`` date, answering JSON; then the instance document with the bearer token. The
    document's shape follows IBM's API reference (trimmed); its error bodies are unverified."""
    if s["mode"] == "disabled":
        return _json({"errors": [{"code": "forbidden", "message": "Forbidden"}]}, 403)
    if "version" not in q:
        return _json({"errors": [{"code": "missing_version",
                                  "message": "The version query parameter is required"}]}, 400)  # fmt: skip
    if path == "/instance_identity/v1/token":
        if method != "PUT":
            return _json({"errors": [{"code": "method_not_allowed"}]}, 405)
        if h.get("metadata-flavor") != "ibm":
            return _json({"errors": [{"code": "missing_metadata_flavor",
                                      "message": "Metadata-Flavor: ibm header is required"}]}, 400)  # fmt: skip
        if s["mode"] == "token-hang":
            return HANG
        return _json({"access_token": IBM_TOKEN, "created_at": "2026-11-30T19:00:00Z",
                      "expires_at": "2026-11-30T19:05:00Z", "expires_in": 300})  # fmt: skip
    if h.get("authorization") != f"Bearer {IBM_TOKEN}":
        return _json({"errors": [{"code": "not_authorized", "message": "Unauthorized"}]}, 401)
    if path == "/metadata/v1/instance":
        nic = {"id": "0717-2d6b2e7a-3a33-4e2b-9c1c-5b0f5c6e1a11", "name": "eth0",
               "primary_ip": {"address": s["private_ipv4"], "id": "0717-6a2c", "name": "node-1-ip"},
               "resource_type": "network_interface",
               "subnet": {"id": "0717-7ec86020", "name": "subnet-1", "resource_type": "subnet"}}  # fmt: skip
        return _json({"id": "0717_e21b7391-2ca2-4ab5-84a8-b92157a633b0", "name": "node-1",
                      "crn": "crn:v1:bluemix:public:is:us-south-1:a/123456::instance:0717_e21b",
                      "profile": {"name": "bx2-2x8"}, "zone": {"name": "us-south-1"},
                      "status": "running", "primary_network_interface": nic,
                      "network_interfaces": [nic], "vpc": {"id": "r006-4727d842", "name": "vpc-1"},
                      "memory": 8, "vcpu": {"architecture": "amd64", "count": 2}})  # fmt: skip
    return _json({"errors": [{"code": "not_found", "message": "Not Found"}]}, 404)


def _tencent(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    """Tencent Cloud CVM (intl.cloud.tencent.com/document/product/213/4934): an EC2-style text
    tree; "404 - Not Found" for anything absent (its body is unverified)."""
    if s["mode"] == "disabled":
        return _text("Forbidden", 403)
    md = "/latest/meta-data"
    leaves = {
        f"{md}/public-ipv4": s["ipv4"],
        f"{md}/local-ipv4": s["private_ipv4"],
        f"{md}/instance-id": "ins-3g445roi",
        f"{md}/uuid": "cfac763a-7094-446b-a8a9-b995e638471a",
        f"{md}/mac": "52:54:00:BF:B3:51",
        f"{md}/placement/region": "ap-guangzhou",
        f"{md}/": "instance-id\ninstance-name\nlocal-ipv4\nmac\nnetwork/\nplacement/\n"
        + ("public-ipv4\n" if s["ipv4"] else "")
        + "uuid",
    }
    value = leaves.get(path)
    return _text(value) if value else (404, "text/html", "<h1>404 - Not Found</h1>", {})


def _yandex(s: dict, method: str, path: str, q: dict, h: dict) -> Any:
    """Yandex Cloud's GCE-format service (yandex.cloud/docs/compute/operations/vm-info/get-info):
    ``Metadata-Flavor: Google`` required; the recursive instance document in GCE's JSON names
    (``networkInterfaces[].accessConfigs[].externalIp``). Error bodies are unverified."""
    if s["mode"] == "disabled":
        return _text("Forbidden", 403)
    if h.get("metadata-flavor") != "Google":
        return _text("Missing Metadata-Flavor:Google header.", 403)
    if path == "/computeMetadata/v1/instance/" and q.get("recursive") == "true":
        access = [{"externalIp": s["ipv4"], "type": "ONE_TO_ONE_NAT"}] if s["ipv4"] else []
        return _json({
            "attributes": {}, "description": "", "hostname": "node-1.ru-central1.internal",
            "id": "fhm1s5h3qk2kt3v5ktlr", "name": "node-1", "zone": "projects/b1g/zones/ru-central1-a",
            "disks": [{"deviceName": "epd8pqhmj9k4kq0j7a6b", "index": 0, "mode": "READ_WRITE",
                       "type": "PERSISTENT"}],
            "networkInterfaces": [{"accessConfigs": access, "ip": s["private_ipv4"],
                                   "mac": "d0:0d:1c:4b:7a:2e",
                                   "network": "projects/b1g/networks/enp6saqnq4ie244g67sb"}],
            "serviceAccounts": {}})  # fmt: skip
    return _text("Not Found", 404)


ROUTES = {
    "aws": _aws, "gcp": _gcp, "azure": _azure, "digitalocean": _digitalocean,
    "hetzner": _hetzner, "oracle": _oracle, "alibaba": _alibaba, "openstack": _openstack,
    "linode": _linode, "vultr": _vultr, "scaleway": _scaleway, "exoscale": _exoscale,
    "upcloud": _upcloud, "ibm": _ibm, "tencent": _tencent, "yandex": _yandex,
    "huawei": _openstack, "ovh": _ovh,
}  # fmt: skip
PROVIDERS = tuple(ROUTES)  # every provider of k3snode's with an HTTP service (a test checks)
_TOKEN_PATHS = ("/latest/api/token", "/v1/token", "/instance_identity/v1/token")


# ---------------------------------------------------------------------------------------------
# The server


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeIMDS/1.0"
    sys_version = ""
    state: FakeState  # set on the subclass the server makes

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        u = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1 << 20)) if length else b""
        if u.path.startswith("/__fake__/"):
            self._control(method, u.path, body)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        st = self.state
        st._reload()
        with st.lock:
            st.log.append(Request(method, self.path, headers, self.client_address[0]))
            if st.log_file:
                with open(st.log_file, "a") as f:
                    f.write(json.dumps(asdict(st.log[-1])) + "\n")
            st.served += 1
            served = st.served
            s = dict(st.data, served=served)
        if float(s.get("delay") or 0) > 0 and self.server.stopping.wait(float(s["delay"])):  # type: ignore[attr-defined]
            return
        retry_after = {"Retry-After": str(s["retry_after"])} if s.get("retry_after") else {}
        if s["mode"] == "flaky" and served <= int(s["fail_count"]):
            self._send(503, "text/html", "<html><body>503 Service Unavailable</body></html>",
                       retry_after)  # fmt: skip
            return
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        reply = ROUTES[s["provider"]](s, method, u.path, q, headers)
        if reply is HANG:
            self._hang()
            return
        status, ctype, text, extra = reply
        if status in (410, 429):
            extra = {**extra, **retry_after}
        if method == "GET" and u.path not in _TOKEN_PATHS and status < 400:
            if s["mode"] == "html":
                status, ctype, text = 200, "text/html", PORTAL_HTML
            elif s["mode"] == "garbage":
                text = GARBAGE[int(s["garbage"]) % len(GARBAGE)]
            elif s["mode"] == "huge":
                self._send(200, "text/plain", None, {}, huge=4 << 20)
                return
            elif s["mode"] == "slow":
                self._send(status, ctype, text, extra, slow=True)
                return
        self._send(status, ctype, text, extra)

    def _send(self, status: int, ctype: str, text: str | None, extra: dict, *,
              huge: int = 0, slow: bool = False) -> None:  # fmt: skip
        data = (text or "").encode()
        length = huge or len(data)
        head = [f"HTTP/1.0 {status} {self.responses.get(status, ('',))[0]}",
                f"Server: {self.server_version}", f"Content-Type: {ctype}",
                f"Content-Length: {length}", "Connection: close"]  # fmt: skip
        head += [f"{k}: {v}" for k, v in extra.items()]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode()
        try:
            if slow:
                for b in raw + data:
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
                    if self.server.stopping.wait(1.0):  # type: ignore[attr-defined]
                        return
            elif huge:
                self.wfile.write(raw)
                chunk = b"1" * 65536
                for _ in range(huge // len(chunk)):
                    self.wfile.write(chunk)
            else:
                self.wfile.write(raw + data)
            self.wfile.flush()
        except OSError:  # the client gave up (as it should on slow and huge answers)
            pass

    def _hang(self) -> None:
        """Never answer; return when the client closes or the server stops."""
        sock = self.connection
        while not self.server.stopping.is_set():  # type: ignore[attr-defined]
            r, _, _ = select.select([sock], [], [], 0.2)
            if r:
                try:
                    if not sock.recv(1, socket.MSG_PEEK):
                        return
                except OSError:
                    return
                time.sleep(0.05)

    def _control(self, method: str, path: str, body: bytes) -> None:
        st = self.state
        try:
            if path == "/__fake__/state" and method == "GET":
                out: Any = st.snapshot()
            elif path == "/__fake__/state" and method in ("POST", "PUT"):
                st.update(json.loads(body or b"{}"))
                out = st.snapshot()
            elif path == "/__fake__/requests" and method == "GET":
                with st.lock:
                    out = [asdict(r) for r in st.log]
            elif path == "/__fake__/requests" and method == "DELETE":
                with st.lock:
                    st.log.clear()
                    st.served = 0
                out = {"cleared": True}
            else:
                self._send(404, "application/json", '{"error": "unknown control path"}', {})
                return
        except (ValueError, TypeError) as e:
            self._send(400, "application/json", json.dumps({"error": str(e)}), {})
            return
        self._send(200, "application/json", json.dumps(out, indent=2), {})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(state: FakeState, host: str = "127.0.0.1", port: int = 0) -> _Server:
    handler = type("Handler", (_Handler,), {"state": state})
    server_cls = type("Server", (_Server,), {
        "address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})  # fmt: skip
    server = server_cls((host, port), handler)
    server.stopping = threading.Event()  # type: ignore[attr-defined]
    return server


class FakeIMDS:
    """The fake in a background thread of the test process (see the module docstring)."""

    def __init__(self, provider: str = "aws", host: str = "127.0.0.1", port: int = 0, **state: Any):
        self.state = FakeState(provider, **state)
        self.server = make_server(self.state, host, port)
        self.host, self.port = host, self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> FakeIMDS:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.stopping.set()  # type: ignore[attr-defined]
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeIMDS:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def set(self, **changes: Any) -> None:
        self.state.update(changes)

    @property
    def requests(self) -> list[Request]:
        with self.state.lock:
            return list(self.state.log)

    def clear_requests(self) -> None:
        with self.state.lock:
            self.state.log.clear()
            self.state.served = 0


class FakeIMDSProcess:
    """The fake as its own process (optionally inside a network namespace), steered through a
    state file and observed through a request log (see the module docstring)."""

    def __init__(self, provider: str = "aws", bind: str = "169.254.169.254:80",
                 netns: str | None = None, python: str = sys.executable, **state: Any) -> None:  # fmt: skip
        import tempfile

        self._dir = tempfile.mkdtemp(prefix="fake-imds-")
        self.state_file = os.path.join(self._dir, "state.json")
        self.log_file = os.path.join(self._dir, "requests.jsonl")
        with open(self.state_file, "w") as f:
            json.dump(state, f)
        cmd = [python, os.path.abspath(__file__), "--provider", provider, "--bind", bind,
               "--state-file", self.state_file, "--log-file", self.log_file]  # fmt: skip
        if netns:
            cmd = ["ip", "netns", "exec", netns, *cmd]
        import subprocess

        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("listening"):
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.stop()
            raise RuntimeError(f"fake IMDS did not start: {err.strip()}")

    def set(self, **changes: Any) -> None:
        """Merge ``changes`` into the running fake's state (seen by its next request)."""
        with open(self.state_file) as f:
            state = json.load(f)
        state.update(changes)
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, self.state_file)
        st = os.stat(self.state_file)
        os.utime(self.state_file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))

    def requests(self) -> list[dict[str, Any]]:
        try:
            with open(self.log_file) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def stop(self) -> None:
        import shutil

        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> FakeIMDSProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Fake cloud metadata service (see the docstring).")
    p.add_argument("--provider", choices=PROVIDERS, default="aws")
    p.add_argument("--bind", default="127.0.0.1:0", help="HOST:PORT ([v6]:PORT for IPv6)")
    p.add_argument("--ipv4", help="public IPv4 ('' for none)")
    p.add_argument("--ipv6", help="public IPv6 ('' for none)")
    p.add_argument("--private-ipv4")
    p.add_argument("--mode", choices=MODES, default="ok")
    p.add_argument("--imdsv1", action="store_true", help="AWS: answer token-less GETs")
    p.add_argument("--fail-count", type=int, default=2)
    p.add_argument("--floating-ipv4")
    p.add_argument("--basic-sku", action="store_true")
    p.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    p.add_argument("--state-file", help="JSON object merged into the state whenever it changes")
    p.add_argument("--log-file", help="append every request as one JSON line")
    a = p.parse_args(argv)
    host, _, port = a.bind.rpartition(":")
    host = host.strip("[]")
    state: dict[str, Any] = {"mode": a.mode, "imdsv1": a.imdsv1, "fail_count": a.fail_count,
                             "basic_sku": a.basic_sku, "delay": a.delay}  # fmt: skip
    for key in ("ipv4", "ipv6", "private_ipv4", "floating_ipv4"):
        value = getattr(a, key)
        if value is not None:
            state[key] = value or None
    fake = FakeIMDS(a.provider, host, int(port), **state)
    fake.state.state_file = a.state_file
    fake.state.log_file = a.log_file
    print(f"listening on {a.bind.rpartition(':')[0]}:{fake.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        fake.server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
