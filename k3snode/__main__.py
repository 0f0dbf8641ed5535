"""``python -m k3snode`` runs the CLI."""

from k3snode.cli import entry

entry()
