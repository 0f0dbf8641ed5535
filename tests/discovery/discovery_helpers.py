"""Discovery run in-process against a fake metadata service, with ``metadata_endpoint`` and
``dmi_dir`` set as a user would set them (the rest of the settings are defaults)."""

from __future__ import annotations

from fakes import dmi_dir
from fakes.imds import FakeIMDS

from k3snode.config.load import load
from k3snode.config.model import Settings
from k3snode.discovery import Discovery, discover


def load_settings(**discovery) -> Settings:
    overrides = {("discovery", k): v for k, v in discovery.items()}
    return load(None, env={}, overrides=overrides)


def run_discovery(fake: FakeIMDS | None, dmi: str, **discovery) -> Discovery:
    if fake is not None:
        discovery.setdefault("metadata_endpoint", fake.url)
    return discover(load_settings(dmi_dir=dmi_dir(dmi), **discovery))


def paths(fake: FakeIMDS) -> list[str]:
    return [r.path for r in fake.requests]


def not_from_metadata(found: Discovery, fam: str) -> bool:
    """The family was not taken from metadata (and not from an echo service). In-process tests
    cannot know the host's own interfaces, which may legitimately fill it."""
    return found.sources.get(fam) in (None, "interface")
