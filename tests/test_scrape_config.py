"""deploy/prometheus/scrape: Prometheus' own promtool accepts the examples, and their timeouts leave the
exporter its whole reading budget while it still answers before Prometheus gives up."""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

from exporter import config, http

SCRAPE = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "scrape"
RULES = SCRAPE.parent / "rules.yml"
CONFIGS = ["static.yml", "file_sd.yml"]


def promtool() -> str:
    """Debian's prometheus package ships promtool (.ci/run installs it); as root, install it if missing."""
    if not shutil.which("promtool") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"], check=True, env=env)
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is missing: apt-get install prometheus", pytrace=False)
    return found


def check_config(path: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), "check", "config", str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", CONFIGS)
def test_promtool_accepts_the_config(name):
    result = check_config(SCRAPE / name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_checks_the_targets_files_too(tmp_path):
    """A broken targets file fails the file_sd config: the check above covers the example targets."""
    copy = tmp_path / "scrape"
    shutil.copytree(SCRAPE, copy)
    (copy / "targets" / "broken.yml").write_text("- targets: 9185\n")
    result = check_config(copy / "file_sd.yml")
    assert result.returncode != 0 and "SD file" in result.stdout + result.stderr


def seconds(duration: str) -> float:
    """A Prometheus duration such as 30s, 5m or 1m30s."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+)(ms|s|m|h)", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


def jobs(name: str) -> list[dict]:
    return yaml.safe_load((SCRAPE / name).read_text())["scrape_configs"]


@pytest.mark.parametrize("name", CONFIGS)
def test_timeouts_leave_the_exporter_its_budget_and_an_answer_in_time(name):
    defaults = config.Settings()
    for job in jobs(name):
        timeout, interval = seconds(job["scrape_timeout"]), seconds(job["scrape_interval"])
        assert timeout < interval
        # What the exporter does with the header Prometheus sends for this job.
        budget = http.scrape_budget({http.SCRAPE_TIMEOUT_HEADER: str(timeout)}, defaults)
        assert budget == 2 * defaults.query_timeout, "the timeout cuts into the exporter's default budget"
        assert budget <= timeout - 0.25


def example_targets() -> list[str]:
    targets = [t for job in jobs("static.yml") for group in job["static_configs"] for t in group["targets"]]
    for path in (SCRAPE / "targets").glob("*.yml"):
        targets += [t for group in yaml.safe_load(path.read_text()) for t in group["targets"]]
    return targets


def test_targets_use_the_exporters_default_port():
    targets = example_targets()
    assert targets and {t.rsplit(":", 1)[1] for t in targets} == {str(config.DEFAULT_PORT)}


@pytest.mark.parametrize("name", CONFIGS)
def test_the_job_is_named_as_the_rules_expect(name):
    """The exporter-down alerts select their target by job name."""
    expected = set(re.findall(r'job="([^"]+)"', RULES.read_text()))
    assert {job["job_name"] for job in jobs(name)} == expected
