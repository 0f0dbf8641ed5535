"""WireGuard through one small interface with two backends.

- ``kernel``: the kernel module, read and configured with pyroute2's generic-netlink WireGuard API.
- ``userspace``: wireguard-go (or any implementation of WireGuard's cross-platform interface), via
  its text protocol on ``/var/run/wireguard/<ifname>.sock``.

Modules: ``types`` (what both backends share), ``kernel``, ``userspace``, ``keys`` (X25519 and the
key file), ``link`` (the interface: pick its backend with ``open_backend``, create it, its
addresses and routes), ``health`` (peer staleness, the flannel observer), ``preflight`` (does the
kernel have WireGuard, are flannel's ports free). Both backends return the same ``Device`` and take
the same ``Update``, so the flannel observer and the underlay never know which is which.

This file imports nothing, so no module of the package depends on another through it.
"""
