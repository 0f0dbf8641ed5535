"""The cloud providers k3snode knows, one module each (``providers/<id>.py``).

Each module declares ``ID``, ``BASE`` (its metadata service's scheme://host[:port]), optionally
``BASE6`` (the service's IPv6 address, raised in parallel with the IPv4 one after a short
stagger), ``recognise(dmi) -> bool`` — how the cloud is told from DMI alone, without any network —
and ``fetch(client, settings) -> Answer`` — how its metadata service gives the public addresses.
A provider with no metadata service over HTTP (VMware's guestinfo) sets ``BASE = None`` and
declares ``read(settings, deadline) -> Answer`` instead.

A module may also declare ``CLOUD_INIT`` (cloud-init's names for its cloud: ``cloud-id`` and
``cloud_name``; only where cloud-init's datasource speaks the same metadata service), ``REFINES``
(the provider whose DMI it refines), ``watch(client)`` (a change signal, see ``longpoll.py``).

``IDS`` is the one list of providers (settings take their choices from it) and the recognition
order: the first module whose ``recognise`` is true wins, so a cloud whose DMI is a refinement of
another's (Huawei Cloud's asset tag on an OpenStack DMI) comes before it.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from k3snode.discovery.dmi import Dmi

IDS = (
    "aws", "gcp", "azure", "digitalocean", "hetzner", "oracle", "alibaba", "linode", "vultr",
    "scaleway", "exoscale", "upcloud", "ibm", "tencent", "yandex", "huawei", "ovh", "openstack",
    "vmware",
)  # fmt: skip


def load(provider_id: str) -> ModuleType:
    if provider_id not in IDS:
        raise KeyError(provider_id)
    return importlib.import_module(f"k3snode.discovery.providers.{provider_id}")


def recognise(dmi: Dmi) -> str | None:
    """The id of the cloud these DMI fields describe, or None (bare metal, unknown VM)."""
    if dmi.empty:
        return None
    for provider_id in IDS:
        if load(provider_id).recognise(dmi):
            return provider_id
    return None


def from_cloud_init(name: str) -> str | None:
    """The provider cloud-init calls ``name`` (its cloud-id or cloud_name), or None."""
    for provider_id in IDS:
        if name in getattr(load(provider_id), "CLOUD_INIT", ()):
            return provider_id
    return None
