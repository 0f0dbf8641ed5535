"""Mesh "tailscale" brought up in a worker thread — install, ``tailscale up``, waiting for Running:
up to minutes — so the loop keeps its ``boot_wait`` and watchdog promises. The result comes back
through the loop's results queue; a bring-up started for settings a reload has since replaced
does not count (its generation is old)."""

from __future__ import annotations

import threading
from typing import Callable

from k3snode import pipeline
from k3snode.config.model import Settings


class MeshWorker:
    def __init__(self, deliver: Callable[[int, str | None], None]) -> None:
        self._deliver = deliver  # called from the worker thread with (generation, error or None)
        self.up = False  # the mesh is up for the current settings (always, for other meshes)
        self.busy = False
        self.generation = 0

    def reset(self, settings: Settings) -> None:
        """New settings: Tailscale is brought up again (a bring-up still running is outdated)."""
        self.up = settings.mesh != "tailscale"
        self.generation += 1

    def start(self, settings: Settings) -> None:
        if self.busy:
            return
        gen = self.generation

        def work() -> None:
            try:
                pipeline.mesh_up(settings)
            except Exception as e:  # TailscaleError, or anything unexpected from the mesh
                self._deliver(gen, str(e))
            else:
                self._deliver(gen, None)

        self.busy = True
        threading.Thread(target=work, name="k3snode-mesh-up", daemon=True).start()

    def finished(self, gen: int, error: str | None) -> str:
        """The loop's side of a result: "outdated", "failed" or "up"."""
        self.busy = False
        if gen != self.generation:
            return "outdated"
        if error is not None:
            return "failed"
        self.up = True
        return "up"
