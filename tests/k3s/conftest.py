"""Fixtures shared by the K3s tests."""

from __future__ import annotations

import pytest
from goyaml import build


@pytest.fixture(scope="session")
def goyaml_oracle(tmp_path_factory) -> str:
    """K3s's YAML library as a program (``goyaml.py``), built once per session (per xdist worker);
    the tests that use it skip when Go or the library is missing."""
    return build(str(tmp_path_factory.mktemp("goyaml")))
