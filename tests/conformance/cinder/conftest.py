"""Fixtures of the Cinder conformance suite: the oracle venv's cinder 29.0.0, a database made by
`cinder-manage db sync` on the test MariaDB, and one Cinder judge process for the whole run."""

from __future__ import annotations

import collections
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import oracles  # noqa: E402  (tests/conformance, put on sys.path by its conftest)
from cinder_deploy import CinderDeployment  # noqa: E402
from cinder_side import CinderJudge  # noqa: E402


@pytest.fixture(scope="session")
def oracle_python() -> pathlib.Path:
    """The oracle venv's python; installed on first use (about five minutes), then cached."""
    return oracles.ensure()


@pytest.fixture(scope="session")
def cinder_deployment(mariadb, oracle_python, tmp_path_factory) -> CinderDeployment:
    deployment = CinderDeployment(mariadb, oracle_python, tmp_path_factory.mktemp("cinder-deployment"))
    deployment.create()
    return deployment


@pytest.fixture(scope="session")
def cinder_judge(cinder_deployment, oracle_python, tmp_path_factory):
    judge = CinderJudge(oracle_python, tmp_path_factory.mktemp("cinder-judge"))
    yield judge
    judge.close()


CINDER_TALLY = pytest.StashKey[collections.Counter]()


@pytest.fixture(scope="session")
def cinder_tally(request) -> collections.Counter:
    """Clouds and rows compared in this run, printed at the end."""
    return request.config.stash.setdefault(CINDER_TALLY, collections.Counter())


def pytest_terminal_summary(terminalreporter, config):
    counts = config.stash.get(CINDER_TALLY, None)
    if counts:
        terminalreporter.write_line(
            f"conformance with Cinder 29.0.0: {counts['clouds']} clouds, {counts['rows']} rows of "
            f"GET /os-services compared on both `list --format json` and /metrics "
            f"({counts['duplicates']} in duplicate groups); clouds disagreeing: {counts['disagreeing']}"
        )
