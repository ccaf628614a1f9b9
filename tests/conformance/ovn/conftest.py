"""Fixtures of the ML2/OVN conformance suite: the oracle venv's python (neutron 29.0.0)."""

from __future__ import annotations

import collections
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import oracles  # noqa: E402  (tests/conformance, put on sys.path by its conftest)


@pytest.fixture(scope="session")
def oracle_python() -> pathlib.Path:
    """The oracle venv's python; installed on first use (about five minutes), then cached."""
    return oracles.ensure()


TALLY = pytest.StashKey[collections.Counter]()


@pytest.fixture
def tally(request) -> collections.Counter:
    """What the suite compared, for the summary line at the end of the run."""
    return request.config.stash.setdefault(TALLY, collections.Counter())


def pytest_terminal_summary(terminalreporter, config):
    counts = config.stash.get(TALLY, collections.Counter())
    if counts["clouds"]:
        terminalreporter.write_line(
            f"conformance with Neutron 29.0.0 on ML2/OVN: {counts['clouds']} clouds, {counts['agents']} OVN agents "
            f"compared field by field; clouds disagreeing: {counts['disagreeing']}"
        )
