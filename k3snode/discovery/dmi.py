"""DMI (SMBIOS) fields from sysfs: how a cloud is recognised before any network is touched.

Reads ``/sys/class/dmi/id/<field>`` (or the directory ``[discovery] dmi_dir`` names). A missing
directory or field reads as empty: non-x86 guests and containers often have no DMI at all, and
that simply means "no cloud recognised". In a container the DMI fields describe the *host*, so
(as cloud-init's ds-identify does) they are not trusted there unless the directory was overridden.
"""

from __future__ import annotations

import os

from k3snode.record import field, record

DEFAULT_DIR = "/sys/class/dmi/id"
FIELDS = (
    "sys_vendor",
    "product_name",
    "product_serial",
    "product_uuid",
    "product_version",
    "chassis_asset_tag",
    "chassis_vendor",
    "bios_vendor",
    "bios_version",
    "board_vendor",
    "board_asset_tag",
)
_CONTAINER_MARKERS = ("/run/systemd/container", "/.dockerenv", "/run/.containerenv")


@record
class Dmi:
    """The DMI fields that were readable (stripped); ``get`` returns "" for any other."""

    directory: str
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str:
        return self.fields.get(name, "")

    @property
    def empty(self) -> bool:
        return not any(self.fields.values())


def read(directory: str = DEFAULT_DIR) -> Dmi:
    """Read every known field; unreadable ones (missing, root-only product_serial) are left out."""
    found: dict[str, str] = {}
    for name in FIELDS:
        try:
            with open(os.path.join(directory, name), "rb") as f:
                raw = f.read(256)
        except OSError:
            continue
        found[name] = raw.decode("utf-8", "replace").strip().strip("\0").strip()
    return Dmi(directory, found)


def in_container(markers: tuple[str, ...] = _CONTAINER_MARKERS) -> bool:
    """True inside systemd-nspawn, Docker or Podman (their DMI is the host's)."""
    return any(os.path.exists(p) for p in markers)
