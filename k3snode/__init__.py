"""k3snode: keeps a K3s node's external address, mesh and config right, on any cloud or bare metal."""

__version__ = "0.1.0"
