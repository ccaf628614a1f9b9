"""deploy/prometheus/scrape: Prometheus' own promtool accepts the examples, and their timeouts leave the
exporter its whole reading budget while it still answers before Prometheus gives up."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import urllib.parse

import pytest
import yaml
from mariadb import free_port
from promserver import JOB, Child, binary, http_get, promtool, seconds, start_exporter, wait_for

from openstack_service_exporter import config, http

SCRAPE = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "scrape"
RULES = SCRAPE.parent / "rules.yml"
CONFIGS = ["static.yml", "file_sd.yml"]


def check_config(path: pathlib.Path) -> subprocess.CompletedProcess:
    return promtool("check", "config", str(path))


@pytest.mark.parametrize("name", CONFIGS)
def test_promtool_accepts_the_config(name):
    result = check_config(SCRAPE / name)
    assert result.returncode == 0, result.stdout
    assert "SUCCESS" in result.stdout


def test_promtool_checks_the_targets_files_too(tmp_path):
    """A broken targets file fails the file_sd config: the check above covers the example targets."""
    copy = tmp_path / "scrape"
    shutil.copytree(SCRAPE, copy)
    (copy / "targets" / "broken.yml").write_text("- targets: 9185\n")
    result = check_config(copy / "file_sd.yml")
    assert result.returncode != 0 and "SD file" in result.stdout


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


@pytest.mark.e2e
def test_a_real_prometheus_scrapes_the_exporter_through_file_sd(tmp_path):
    """file_sd.yml as committed, but for a faster clock and the example targets file aimed at a
    demo exporter on loopback: Prometheus finds it, scrapes it and adds the file's labels."""
    exporter, metrics_url = start_exporter(["demo"], tmp_path / "exporter.log")
    scrape = tmp_path / "scrape"
    shutil.copytree(SCRAPE, scrape)
    prometheus_yml = yaml.safe_load((scrape / "file_sd.yml").read_text())
    prometheus_yml["global"]["scrape_interval"] = "1s"
    (job,) = prometheus_yml["scrape_configs"]
    job.update(scrape_interval="1s", scrape_timeout="1s")
    job["file_sd_configs"][0]["refresh_interval"] = "1s"
    (scrape / "file_sd.yml").write_text(yaml.safe_dump(prometheus_yml))
    (targets_file,) = (scrape / "targets").glob("*.yml")
    labels = yaml.safe_load(targets_file.read_text())[0]["labels"]
    target = urllib.parse.urlsplit(metrics_url).netloc
    targets_file.write_text(yaml.safe_dump([{"targets": [target], "labels": labels}]))

    base = f"http://127.0.0.1:{free_port()}"
    prometheus = Child(
        [
            binary("prometheus"),
            f"--config.file={scrape / 'file_sd.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address={base[7:]}",
        ],
        tmp_path / "prometheus.log",
    )

    def query(promql: str) -> list[dict]:
        prometheus.check_alive()
        body = http_get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        return json.loads(body)["data"]["result"] if body else []

    try:
        (up,) = wait_for("Prometheus to scrape the exporter", lambda: query(f'up{{job="{JOB}"}} == 1'), timeout=60)
        assert up["metric"]["region"] == labels["region"]
        health = query(f'service_exporter_database_up{{job="{JOB}"}}')
        assert health and {(r["metric"]["region"], r["value"][1]) for r in health} == {(labels["region"], "1")}
    finally:
        prometheus.stop()
        exporter.stop()
