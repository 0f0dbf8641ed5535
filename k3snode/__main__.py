"""``python -m k3snode`` runs the CLI."""

import sys

from k3snode.cli import main

sys.exit(main())
