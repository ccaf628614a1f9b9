"""Fixtures of the Neutron conformance suite: real Neutron 29.0.0 (the shared oracle venv), a database
made by neutron-db-manage on the test MariaDB, and one Neutron judge process for the whole run."""

from __future__ import annotations

import collections
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import oracles  # noqa: E402
from neutron_deploy import NeutronDeployment  # noqa: E402
from neutron_side import NeutronJudge  # noqa: E402


@pytest.fixture(scope="session")
def oracle_python() -> pathlib.Path:
    """The python of the shared oracle venv (neutron 29.0.0 among the projects); installed on first use."""
    return oracles.ensure()


TALLY = pytest.StashKey[collections.Counter]()


@pytest.fixture(scope="session")
def neutron_deployment(mariadb, oracle_python, tmp_path_factory, request) -> NeutronDeployment:
    """Made once per session (neutron-db-manage takes about 40 s); its tally of what was compared
    is printed at the end."""
    deployment = NeutronDeployment(mariadb, oracle_python, tmp_path_factory.mktemp("neutron-deployment"))
    deployment.create()
    request.config.stash[TALLY] = deployment.tally
    return deployment


@pytest.fixture(scope="session")
def neutron_judge(neutron_deployment, oracle_python, tmp_path_factory):
    judge = NeutronJudge(oracle_python, tmp_path_factory.mktemp("neutron-judge") / "stderr.log")
    yield judge
    judge.close()


@pytest.fixture(scope="session")
def ml2_ovn_conf() -> pathlib.Path:
    """An ml2_conf.ini of an ML2/OVN cloud: its OVN agents are not rows of `agents`."""
    return pathlib.Path(__file__).with_name("ml2_conf_ovn.ini")


def pytest_terminal_summary(terminalreporter, config):
    counts = config.stash.get(TALLY, collections.Counter())
    if counts["clouds"]:
        terminalreporter.write_line(
            f"conformance with Neutron 29.0.0: {counts['clouds']} clouds, {counts['rows']} agents compared on "
            "both `list --format json` and /metrics "
            f"(schema by neutron-db-manage in {counts['schema_seconds']:.1f} s); "
            f"clouds disagreeing: {counts['disagreeing']}"
        )
