"""deploy/prometheus/scrape: Prometheus' own promtool accepts the examples, and their timeouts leave the
exporter its whole reading budget while it still answers before Prometheus gives up."""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import time
import urllib.parse

import pytest
import yaml

from exporter import config, http
from helpers import free_port, get, start_exporter, stop_exporter

SCRAPE = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "scrape"
RULES = SCRAPE.parent / "rules.yml"
CONFIGS = ["static.yml", "file_sd.yml"]


def from_prometheus_package(binary: str) -> str:
    """Debian's prometheus package ships prometheus and promtool (.ci/run installs it); as root,
    install it if missing, else fail loudly."""
    if not shutil.which(binary) and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"], check=True, env=env)
    found = shutil.which(binary)
    if not found:
        pytest.fail(f"{binary} is missing: apt-get install prometheus", pytrace=False)
    return found


def promtool() -> str:
    return from_prometheus_package("promtool")


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


def query(prometheus: str, promql: str) -> list[dict]:
    status, _, body = get(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql}), timeout=10)
    assert status == 200, body
    return json.loads(body)["data"]["result"]


@pytest.mark.e2e
def test_a_real_prometheus_scrapes_the_exporter_through_file_sd(tmp_path):
    """file_sd.yml as committed, but for a faster clock and the example targets file aimed at a
    demo exporter on loopback: Prometheus finds it, scrapes it and adds the file's labels."""
    exporter_port, prometheus_port = free_port(), free_port()
    scrape = tmp_path / "scrape"
    shutil.copytree(SCRAPE, scrape)
    prometheus_yml = yaml.safe_load((scrape / "file_sd.yml").read_text())
    prometheus_yml["global"]["scrape_interval"] = "1s"
    (job,) = prometheus_yml["scrape_configs"]
    job.update(scrape_interval="1s", scrape_timeout="1s")
    job["file_sd_configs"][0]["refresh_interval"] = "1s"
    (scrape / "file_sd.yml").write_text(yaml.safe_dump(prometheus_yml))
    (targets_file,) = (scrape / "targets").glob("*.yml")
    groups = yaml.safe_load(targets_file.read_text())
    groups = [{"targets": [f"127.0.0.1:{exporter_port}"], "labels": groups[0]["labels"]}]
    targets_file.write_text(yaml.safe_dump(groups))

    exporter = start_exporter(["--exporter-listen_address", f"127.0.0.1:{exporter_port}", "demo"], exporter_port)
    log = tmp_path / "prometheus.log"  # a file, not a pipe: a full pipe would stall Prometheus
    with log.open("w") as log_file:
        prometheus = subprocess.Popen(
            [from_prometheus_package("prometheus"), f"--config.file={scrape / 'file_sd.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{prometheus_port}"],
            stdout=log_file, stderr=log_file)
    base = f"http://127.0.0.1:{prometheus_port}"
    try:
        deadline, up = time.monotonic() + 60, []
        while time.monotonic() < deadline and not up:
            assert prometheus.poll() is None, log.read_text()[-3000:]
            try:
                up = query(base, 'up{job="openstack-service-exporter"} == 1')
            except OSError:
                pass  # not listening yet
            time.sleep(0.5)
        assert up, "Prometheus did not scrape the exporter within 60 s: " + log.read_text()[-3000:]
        assert up[0]["metric"]["region"] == groups[0]["labels"]["region"]
        health = query(base, 'service_exporter_database_up{job="openstack-service-exporter"}')
        assert health and {r["value"][1] for r in health} == {"1"}
        assert {r["metric"]["region"] for r in health} == {groups[0]["labels"]["region"]}
    finally:
        prometheus.terminate()
        prometheus.wait(30)
        stop_exporter(exporter)
