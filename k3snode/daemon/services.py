"""What runs beside the daemon's loop: the health endpoint (its port listens before READY=1),
prometheus-client's metrics (after READY: its import is the slowest part of a start), the
netlink subscription the loop selects on, and the metadata long-poll thread."""

from __future__ import annotations

import contextlib
import gc
import logging
import socket
import sys
from typing import Any, Callable

from k3snode.config.model import Settings
from k3snode.daemon import longpoll
from k3snode.daemon.netwatch import Watch
from k3snode.health import listener
from k3snode.health.metrics import Metrics
from k3snode.health.model import Health

log = logging.getLogger(__name__)


class Services:
    def __init__(self) -> None:
        self.listener: socket.socket | None = None  # bound before READY
        self.server: Any = None  # health/server.py's HealthServer, serving after READY
        self.metrics: Metrics | None = None
        self.netlink: Watch | None = None
        self.long_poll_started = False

    @property
    def health_port(self) -> int:
        return self.listener.getsockname()[1] if self.listener is not None else 0

    def listen_health(self, settings: Settings) -> None:
        """Bind the health port before READY (its port is known, a client connecting right after
        READY waits in the backlog); ``serve_health`` answers from right after READY."""
        h = settings.health
        if h.port == 0:
            return
        try:
            self.listener = listener.bind(h.listen, h.port)
        except OSError as e:
            log.error("health endpoint %s:%s: %s; running without it", h.listen, h.port, e)
            return
        host = f"[{h.listen}]" if ":" in h.listen else h.listen
        log.info("health endpoint on http://%s:%d/healthz", host, self.health_port)

    def serve_health(self, settings: Settings, snapshot: Callable[[], Health]) -> None:
        """Answer /healthz and /metrics on the bound port, from a thread; once."""
        if self.listener is None or self.server is not None:
            return
        # here, not at the top: http.server costs ≈ 38 ms of imports K3s's start need not wait for
        from k3snode.health.server import HealthServer

        h = settings.health
        self.server = HealthServer(
            h.listen, h.port, snapshot, self._render_metrics, listener=self.listener
        )
        self.server.start()

    def _render_metrics(self) -> bytes:
        metrics = self.metrics
        return metrics.render() if metrics is not None else b""

    def start_metrics(self) -> Metrics | None:
        """prometheus-client's registry; None without a health endpoint or the library."""
        if self.listener is None:
            return None
        try:
            self.metrics = Metrics()
        except ImportError as e:
            log.error("/metrics needs prometheus-client (%s); serving /healthz only", e)
        return self.metrics

    def open_netlink(self) -> None:
        try:
            self.netlink = Watch()
        except OSError as e:
            log.warning("netlink unavailable (%s); relying on the poll timer", e)

    def read_netlink(self) -> list[str]:
        """Why a pass is wanted, from the subscription's pending messages."""
        if self.netlink is None:
            return []
        try:
            return self.netlink.read()
        except OSError as e:
            log.warning("netlink read failed (%s); relying on the poll timer", e)
            self._close_netlink()
            return []

    def _close_netlink(self) -> None:
        if self.netlink is not None:
            with contextlib.suppress(Exception):
                self.netlink.close()
            self.netlink = None

    def start_long_poll(
        self, settings: Settings, changed: Callable[[str], None], stopped: Callable[[], bool]
    ) -> None:
        """The provider's change signal (GCP's wait_for_change), in its thread; once."""
        if settings.mesh == "tailscale" or self.long_poll_started:
            return
        self.long_poll_started = True
        if longpoll.start(settings, changed, stopped):
            log.info("watching the metadata service for changes (long-poll)")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        elif self.listener is not None:
            self.listener.close()
        self._close_netlink()
        close_event_loops()


def close_event_loops() -> None:
    """pyroute2 (0.9) runs its sockets on an asyncio loop it may leave open in this thread; one
    left to the garbage collector at exit prints a traceback (``BaseEventLoop.__del__``).
    asyncio is looked up, not imported: a daemon that never used pyroute2 has no loop."""
    asyncio: Any = sys.modules.get("asyncio")
    if asyncio is None:
        return
    with contextlib.suppress(Exception):
        policy = asyncio.get_event_loop_policy()
        loop = getattr(getattr(policy, "_local", None), "_loop", None)
        if loop is not None and not loop.is_running() and not loop.is_closed():
            loop.close()
    for obj in gc.get_objects():
        with contextlib.suppress(Exception):
            if (
                isinstance(obj, asyncio.AbstractEventLoop)
                and not obj.is_running()
                and not obj.is_closed()
            ):
                obj.close()
