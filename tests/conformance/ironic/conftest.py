"""Fixtures of the Ironic conformance suite: real Ironic 39.0.0 (the oracle venv), a database made by
`ironic-dbsync upgrade` on the test MariaDB, and one Ironic judge process for the whole run."""

from __future__ import annotations

import collections
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from ironic_deploy import IronicDeployment  # noqa: E402
from ironic_side import IronicJudge  # noqa: E402


@pytest.fixture(scope="session")
def oracle_python() -> pathlib.Path:
    """The python of the venv that holds Ironic 39.0.0; installed on first use, then cached."""
    import oracles  # ../oracles.py, on sys.path through the parent conftest

    return oracles.ensure()


@pytest.fixture(scope="session")
def ironic_deployment(mariadb, oracle_python, tmp_path_factory, ironic_tally) -> IronicDeployment:
    deployment = IronicDeployment(mariadb, oracle_python, tmp_path_factory.mktemp("ironic-deployment"))
    deployment.create()
    ironic_tally["schema_seconds"] = deployment.schema_seconds
    return deployment


@pytest.fixture(scope="session")
def ironic_judge(ironic_deployment, oracle_python, tmp_path_factory):
    judge = IronicJudge(oracle_python, tmp_path_factory.mktemp("ironic-judge") / "stderr.log")
    yield judge
    judge.close()


IRONIC_TALLY = pytest.StashKey[collections.Counter]()


@pytest.fixture(scope="session")
def ironic_tally(request) -> collections.Counter:
    """Clouds and rows compared in this run, printed at the end."""
    return request.config.stash.setdefault(IRONIC_TALLY, collections.Counter())


def pytest_terminal_summary(terminalreporter, config):
    counts = config.stash.get(IRONIC_TALLY, None)
    if counts and counts["clouds"]:
        terminalreporter.write_line(
            f"conformance with Ironic 39.0.0: {counts['clouds']} clouds, {counts['rows']} rows compared on both "
            f"`list --format json` and /metrics; clouds disagreeing: {counts['disagreeing']}; "
            f"ironic-dbsync upgrade took {counts['schema_seconds']:.1f} s"
        )
