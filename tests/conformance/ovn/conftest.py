"""Fixtures of the ML2/OVN conformance suite: the oracle venv's python (neutron 29.0.0)."""

from __future__ import annotations

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import oracles  # noqa: E402  (tests/conformance, put on sys.path by its conftest)


@pytest.fixture(scope="session")
def oracle_python() -> pathlib.Path:
    """The oracle venv's python; installed on first use (about five minutes), then cached."""
    return oracles.ensure()
