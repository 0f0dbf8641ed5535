"""OVHcloud Public Cloud: plain OpenStack (Nova metadata at 169.254.169.254). Instances on the
public network (Ext-Net) carry their public IPv4 on the NIC, so Nova's ``local-ipv4`` is itself
public; the IPv6 is a static entry of ``network_data.json``. The OpenStack reading handles both.

Not recognised from DMI: OVHcloud's guests show OpenStack's own DMI (``OpenStack Nova``), with
nothing found that tells them from other OpenStack clouds, so an OVHcloud node is recognised as
``openstack`` — which reads the same answers the same way. ``provider = "ovh"`` names it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from k3snode.discovery.dmi import Dmi
from k3snode.discovery.providers import openstack
from k3snode.discovery.providers.common import Answer

if TYPE_CHECKING:
    from k3snode.discovery.http import Client


ID = "ovh"
BASE = "http://169.254.169.254"


def recognise(dmi: Dmi) -> bool:
    return False  # see the module docstring: no DMI signal of its own (unverified)


def fetch(client: Client, ds: object = None) -> Answer:
    return openstack.fetch(client, ds, provider=ID)
