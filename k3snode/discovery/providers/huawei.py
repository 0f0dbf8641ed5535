"""Huawei Cloud ECS: an OpenStack-compatible metadata service (Nova's EC2 tree and
``network_data.json``) at 169.254.169.254; ``public-ipv4`` is the bound EIP. Told from generic
OpenStack by its DMI chassis asset tag ``HUAWEICLOUD`` (cloud-init's ds-identify lists it as an
OpenStack tag; cloud-init itself reports the platform as "openstack", which DMI refines here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode.discovery.dmi import Dmi
from k3snode.discovery.providers import openstack
from k3snode.discovery.providers.common import Answer

if TYPE_CHECKING:
    from k3snode.discovery.http import Client


ID = "huawei"
BASE = "http://169.254.169.254"
REFINES = "openstack"  # cloud-init's name for this cloud
ASSET_TAG = "HUAWEICLOUD"


def recognise(dmi: Dmi) -> bool:
    return dmi.get("chassis_asset_tag") == ASSET_TAG


def fetch(client: Client, ds: object = None) -> Answer:
    return openstack.fetch(client, ds, provider=ID)
