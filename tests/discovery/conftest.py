"""The ``fake_imds`` fixture: ``fake_imds(provider, **state)`` starts a FakeIMDS on loopback and
stops it after the test."""

from __future__ import annotations

import pytest
from fakes.imds import FakeIMDS


@pytest.fixture
def fake_imds():
    started: list[FakeIMDS] = []

    def start(provider: str = "aws", **state) -> FakeIMDS:
        fake = FakeIMDS(provider, **state).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()
