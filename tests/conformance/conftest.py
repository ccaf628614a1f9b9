"""Fixtures of the conformance suite: real Nova 34.0.0 (its own venv), a deployment made by
nova-manage on the test MariaDB, and one Nova judge process for the whole run."""

from __future__ import annotations

import collections
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import novaenv  # noqa: E402
from nova_deploy import NovaDeployment  # noqa: E402
from nova_side import NovaJudge  # noqa: E402


@pytest.fixture(scope="session")
def nova_python() -> pathlib.Path:
    """The Nova venv's python; installed on first use (about a minute), then cached."""
    return novaenv.ensure()


@pytest.fixture(scope="session")
def nova_deployment(mariadb, nova_python, tmp_path_factory) -> NovaDeployment:
    deployment = NovaDeployment(mariadb, nova_python, tmp_path_factory.mktemp("nova-deployment"))
    deployment.create()
    return deployment


@pytest.fixture(scope="session")
def nova_judge(nova_deployment, nova_python, tmp_path_factory):
    judge = NovaJudge(nova_python, tmp_path_factory.mktemp("nova-judge") / "stderr.log")
    yield judge
    judge.close()


TALLY = pytest.StashKey[collections.Counter]()


@pytest.fixture(scope="session")
def tally(request) -> collections.Counter:
    """Clouds and rows compared in this run, printed at the end."""
    return request.config.stash.setdefault(TALLY, collections.Counter())


def pytest_terminal_summary(terminalreporter, config):
    counts = config.stash.get(TALLY, None)
    if counts:
        terminalreporter.write_line(
            f"conformance with Nova 34.0.0: {counts['clouds']} clouds, {counts['rows']} rows compared on both "
            f"`list --format json` and /metrics, {counts['api_rows']} of them also with GET /os-services; "
            f"clouds disagreeing: {counts['disagreeing']}"
        )
