"""VMware guests (vSphere, on premises): no metadata service over the network — the VM's
``guestinfo`` keys, set by whoever deployed it (cloud-init's VMware datasource reads the same
keys), are read through VMware Tools' ``vmware-rpctool "info-get guestinfo.<key>"``.

``vmware-rpctool`` prints the value on stdout and exits 0; an unset key prints ``No value found``
on stderr and exits 1; outside VMware it says ``Failed sending message to VMware.`` and exits 1.

Read, in order, and only what is public is taken:

1. ``guestinfo.k3snode.external-ips`` — the node's public address(es), comma-separated, for a
   deployer that knows them (the NAT address of an on-premises VM is known only outside it).
2. ``guestinfo.metadata`` (with ``guestinfo.metadata.encoding``: ``base64``/``b64`` or
   ``gzip+base64``/``gz+b64``) — cloud-init's JSON or YAML metadata; the static addresses of its
   ``network`` configuration (netplan v2 ``ethernets.*.addresses``, or v1 ``config[].subnets[]``).

Without ``vmware-rpctool`` (no open-vm-tools) nothing is read and both families go on to the
fallbacks — the usual case on premises, where a public address is on the NIC if there is one.
No network is touched either way.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import zlib
from typing import Any

from k3snode.discovery.dmi import Dmi
from k3snode.discovery.errors import MetadataError
from k3snode.discovery.providers.common import Answer, Reading, as_list, dig

ID = "vmware"
CLOUD_INIT = ("vmware",)  # cloud-init's cloud-id / cloud_name for this cloud
BASE = None  # no HTTP service: ``read`` instead of ``fetch``
TOOL = "vmware-rpctool"
KEY_IPS = "k3snode.external-ips"
KEY_METADATA = "metadata"
MAX_VALUE = 256 * 1024


def recognise(dmi: Dmi) -> bool:
    return "vmware" in dmi.get("product_name").lower() or dmi.get("sys_vendor") == "VMware, Inc."


def read(ds: object, deadline: float, clock=None) -> Answer:

    from k3snode.discovery import rpctool

    clock = clock or time.monotonic
    r = Reading(ID)
    tool = rpctool.find(TOOL)
    if tool is None:
        r.notes.append(f"vmware: {TOOL} not installed (open-vm-tools); guestinfo not read")
        return r.answer()
    given = rpctool.get(tool, KEY_IPS, deadline, clock)
    for value in (given or "").replace(",", " ").split():
        fam = "ipv6" if ":" in value else "ipv4"
        r.offer(fam, value, f"guestinfo.{KEY_IPS}")
    if len(r.found) < 2:
        raw = rpctool.get(tool, KEY_METADATA, deadline, clock)
        if raw:
            encoding = rpctool.get(tool, KEY_METADATA + ".encoding", deadline, clock) or ""
            for value in _network_addresses(_load(_decode(raw, encoding))):
                fam = "ipv6" if ":" in value else "ipv4"
                if fam not in r.found:
                    r.offer(fam, value, "guestinfo.metadata network")
    return r.answer()


def _decode(raw: str, encoding: str) -> str:

    try:
        if encoding in ("gzip+base64", "gz+b64"):
            # bounded while it unpacks (wbits 31: the gzip format), not after
            unpack = zlib.decompressobj(31)
            data = unpack.decompress(base64.b64decode(raw, validate=False), MAX_VALUE + 1)
            if len(data) > MAX_VALUE:
                raise MetadataError(f"guestinfo.metadata: larger than {MAX_VALUE} bytes unpacked")
            if not unpack.eof:
                raise EOFError
            return data.decode("utf-8", "replace")
        if encoding in ("base64", "b64"):
            return base64.b64decode(raw, validate=False).decode("utf-8", "replace")
    except (binascii.Error, OSError, EOFError, zlib.error):
        raise MetadataError(f"guestinfo.metadata: not valid {encoding}") from None
    return raw


def _load(text: str) -> Any:

    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        import yaml
    except ImportError:  # PyYAML is a dependency; be safe all the same
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise MetadataError("guestinfo.metadata: neither JSON nor YAML") from None


def _network_addresses(md: Any) -> list[str]:
    """Static addresses of cloud-init network config v2 (``ethernets``) or v1 (``config``)."""
    network = dig(md, "network")
    if isinstance(dig(network, "config"), dict):  # cloud-init nests it as {"config": …}
        network = network["config"]
    out: list[str] = []
    ethernets = dig(network, "ethernets")
    if isinstance(ethernets, dict):
        for nic in ethernets.values():
            out.extend(a for a in as_list(dig(nic, "addresses")) if isinstance(a, str))
    for entry in as_list(dig(network, "config")):
        for subnet in as_list(dig(entry, "subnets")):
            address = dig(subnet, "address")
            if isinstance(address, str) and dig(subnet, "type") in ("static", "static6"):
                out.append(address)
    return out
