#!/usr/bin/python3 -s
"""k3snode, as installed by the rpm: the module lives in /usr/share/k3snode."""

import sys

sys.path.insert(0, "/usr/share/k3snode")

from k3snode.cli import entry

entry()
