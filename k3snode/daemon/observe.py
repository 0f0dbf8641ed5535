"""The daemon's periodic look at the node: K3s's unit, discovery gone stale, the K3s config
against what k3snode would write, the underlay as its last pass saw it, and the observers of
``health/registry.py``. Everything here only reads; what it sees goes into the health model.

The registry and the underlay's check are imported at the first look, not at the top: that is
after READY=1, and their modules (the meshes' health code) cost some 60 ms of imports that K3s's
start should not wait for (``tests/test_architecture.py`` lists these two)."""

from __future__ import annotations

from typing import Any, Callable

from k3snode import pipeline
from k3snode.config.model import Settings
from k3snode.daemon.tracker import Addresses
from k3snode.health.checks import Observation
from k3snode.health.model import HealthModel
from k3snode.k3s.service import Service


def health_interval(settings: Settings, underlay_interval: float | None = None) -> float:
    """Seconds between reports: half the grace period (0.5–30 s); with the underlay's keeper
    running, as often as it makes a pass, so what each pass saw is reported."""
    interval = max(0.5, min(30.0, settings.health.grace / 2))
    if underlay_interval is not None:
        interval = min(interval, underlay_interval)
    return interval


class Observations:
    """The observers (made once: some keep state between calls) and what they last saw."""

    def __init__(self) -> None:
        self._observers: tuple[Callable[[Settings], list[Observation]], ...] | None = None
        self.observed: tuple[Observation, ...] = ()  # the observers' last answers (peers)
        self.k3s_state = ""  # "k3s.service active (running)"
        self.k3s_active: bool | None = None

    def k3s(self, settings: Settings, health: HealthModel, last_restart: dict | None) -> None:
        """K3s's unit; not while a restart is being watched, and a failed restart's report is not
        overwritten by the unit's state."""
        st = Service.for_settings(settings).state()
        ok = st.active == "active"
        self.k3s_state = st.describe()
        self.k3s_active = ok
        failed_restart = (
            last_restart is not None
            and last_restart["outcome"] in ("failed", "timeout", "error")
            and not ok
        )
        if not failed_restart:
            health.observe(Observation("k3s", ok, st.describe()))

    def rest(
        self,
        settings: Settings,
        health: HealthModel,
        addresses: Addresses,
        now: float,
        underlay: Any = None,
    ) -> str | None:
        """Everything but K3s; returns why a pass is wanted (someone else changed the config)."""
        from k3snode.health import registry
        from k3snode.mesh.underlay import checks as underlay_checks

        wanted = None
        stale_after = 2 * settings.daemon.poll_interval + settings.health.grace
        last_ok = addresses.last_discovery_ok
        if last_ok is not None and now - last_ok > stale_after:
            health.observe(
                Observation("discovery", False, f"no successful discovery for {now - last_ok:.0f}s")
            )
        if addresses.found is not None:
            try:
                # keys only: the secret files are read (and checked) by the passes that write
                planned = pipeline.plan(settings, addresses.found.external_ips, with_secrets=False)
            except Exception as e:
                health.observe(Observation("config", False, f"cannot render: {e}"))
            else:
                path = planned.file.path
                if planned.keys_changed:
                    what = planned.summary
                    detail = f"{path} differs from what k3snode would write ({what})"
                    health.observe(Observation("config", False, detail))
                    wanted = f"{path} changed by someone else ({what})"
                else:
                    health.observe(Observation("config", True, f"{path} is current"))
        observed: list[Observation] = []
        if self._observers is None:
            self._observers = registry.observers()
        for observe in self._observers:
            try:
                got = observe(settings)
            except Exception as e:
                health.observe(Observation(registry.name(observe), False, f"observer failed: {e}"))
                continue
            for obs in got:
                health.observe(obs)
                observed.append(obs)
        if underlay is not None and underlay.seen is not None:
            # the keeper's judge remembers peers never seen with a handshake
            obs = underlay_checks.observe(settings, underlay.seen, peer_judge=underlay.judge)
            health.observe(obs)
            observed.append(obs)
        self.observed = tuple(observed)
        return wanted
