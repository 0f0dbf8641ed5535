"""Fixtures shared by the K3s tests."""

from __future__ import annotations

import pytest
from goyaml import build


@pytest.fixture(scope="session")
def goyaml_oracle() -> str:
    """K3s's YAML library as a program (``goyaml.py``), built once per source for all workers;
    the tests that use it skip when Go or the library is missing."""
    return build()
