"""Prometheus' side of the tests: Debian's prometheus and promtool, a private Prometheus server,
the exporter as a child process, and the metric names a PromQL expression uses.

Every process here is started by the tests and ended by its own PID.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml
from mariadb import free_port, terminate
from prometheus_client.parser import text_string_to_metric_families

ROOT = pathlib.Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tests"
GRAFANA = ROOT / "grafana"
JOB = "openstack-service-exporter"  # the scrape job rules.yml assumes


def binary(name: str) -> str:
    """Path of prometheus or promtool; installs Debian's prometheus package when root, else fails."""
    if not shutil.which(name) and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"], check=True, env=env
        )
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed and could not be installed: apt-get install prometheus", pytrace=False)
    return path


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary("promtool"), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120
    )


def wait_for(what: str, probe, timeout: float = 30.0, every: float = 0.2):
    """probe()'s first truthy value; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}", pytrace=False)
        time.sleep(every)


def http_get(url: str, timeout: float = 5.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


class Child:
    """A process of the test's own, its output in a log file; stop() ends that PID only."""

    def __init__(self, args: list[str], log: pathlib.Path):
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(f"{self.proc.args[0]} exited ({self.proc.returncode}):\n{self.output()}", pytrace=False)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        terminate(self.proc, 15)


def start_exporter(args: list[str], log: pathlib.Path) -> tuple[Child, str]:
    """`python -m openstack_service_exporter <global options> --exporter-listen_address ... <args>`; its /metrics
    URL once it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    child = Child(
        [sys.executable, "-m", "openstack_service_exporter", "--exporter-listen_address", f"127.0.0.1:{port}", *args],
        log,
    )

    def ready():
        child.check_alive()
        return http_get(url) is not None

    wait_for(f"the exporter on {url}", ready, timeout=60)
    return child, url


@functools.cache
def demo_scrape() -> str:
    """The text of a real scrape of the exporter (the `demo` subcommand)."""
    with tempfile.TemporaryDirectory() as tmp:
        child, url = start_exporter(["demo"], pathlib.Path(tmp) / "demo.log")
        try:
            return http_get(url)
        finally:
            child.stop()


def demo_families(project: str | None = None) -> dict[str, set[str]]:
    """Sample names of the demo's scrape, each with its label names; with `project`, of that project's
    series (and those without a project label) only. A family the exporter declares with no sample now
    (a gauge) is listed with no labels."""
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(demo_scrape()):
        if not family.samples and project is None:
            names[family.name] = set()
        for sample in family.samples:
            if project is None or sample.labels.get("project", project) == project:
                names.setdefault(sample.name, set()).update(sample.labels)
    return names


# What the sources of projects not yet in the registry will add (the exporter's contract for them):
# their own per-service families and the extra labels of their service_info. Rules and dashboard use
# them already; once a project is registered, its own declaration counts and its entry here is unused.
PENDING = {
    "neutron": ({"service_started_timestamp_seconds"}, {"agent_type", "topic", "id"}),
    "ironic": ({"service_online"}, {"conductor_group", "drivers"}),
}


def registered_sources() -> dict:
    from openstack_service_exporter.sources import SOURCES

    return {s.project: s for s in SOURCES}


def pending_projects() -> set[str]:
    return set(PENDING) - set(registered_sources())


def pending_families() -> set[str]:
    return set().union(*(PENDING[p][0] for p in pending_projects()))


def info_labels(project: str) -> set[str]:
    """service_info's labels beyond those of service_up for `project`: from the demo's scrape when it
    serves the project, else from the registered source's declaration, else from PENDING."""
    scraped = demo_families(project)
    if "service_info" in scraped:
        return scraped["service_info"] - scraped["service_up"]
    source = registered_sources().get(project)
    if source is not None:
        return {label.name for label in source.info_labels}
    return PENDING[project][1]


# service_info{project="P"}, or with more matchers after the project's (an agent type).
INFO_JOIN = re.compile(r'ignoring\(([^)]*)\) group_left\(([^)]*)\) service_info\{project="(\w+)"(?:,[^}]*)?\}')


def info_joins(expr: str) -> list[tuple[str, set[str]]]:
    """(project, ignored labels) of every `* ignoring(...) group_left(...) service_info{project="P"}`
    of a query; fails on a service_info join of any other shape, which this cannot check."""
    expr = " ".join(expr.split())
    joins = [(m.group(3), {label.strip() for label in m.group(1).split(",")}) for m in INFO_JOIN.finditer(expr)]
    assert len(joins) == len(re.findall(r"group_left\([^)]*\) service_info\b", expr)), (
        f"a service_info join of another shape: {expr}"
    )
    return joins


def recorded_names(rules_path: pathlib.Path = RULES) -> set[str]:
    groups = yaml.safe_load(rules_path.read_text())["groups"]
    return {r["record"] for g in groups for r in g["rules"] if "record" in r}


# `up` is written by Prometheus itself for every scrape target.
PROMETHEUS_NAMES = {"up"}

STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, keywords, labels or durations)."""
    expr = STRING.sub('""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for m in re.finditer(r"(?<![\w.:$])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        if m.group() not in KEYWORDS and not expr[m.end() :].lstrip().startswith("("):
            names.add(m.group())
    return names


def seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    parts = re.findall(r"(\d+)([smhdw])", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


def shortened_rules(text: str) -> str:
    """rules.yml for a test that cannot wait minutes: every `for:` divided by 60 (3m -> 3s, 24h -> 24m);
    expressions, labels and annotations untouched."""
    data = yaml.safe_load(text)
    for group in data["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{seconds(rule['for']) // 60}s"
    return yaml.safe_dump(data, sort_keys=False)


class Prometheus:
    """A Prometheus of the test's own: loopback port, its own data directory, 1 s scrape and evaluation.

    It scrapes `target` in the job the rules expect, or runs `config` as given (a test's own)."""

    def __init__(
        self,
        directory: pathlib.Path,
        target: str | None = None,
        rules: pathlib.Path | None = None,
        config: dict | None = None,
    ):
        config = config or {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
        }
        directory.mkdir(parents=True, exist_ok=True)
        config_file = directory / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.child = Child(
            [
                binary("prometheus"),
                f"--config.file={config_file}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
            ],
            directory / "prometheus.log",
        )

        def ready():
            self.child.check_alive()
            return http_get(self.url + "/-/ready") is not None

        wait_for("Prometheus to be ready", ready, timeout=60)

    def api(self, path: str, **params) -> dict:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:  # a bad query: Prometheus says why in the body
            body = json.load(exc)
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def alerts(self, name: str) -> list[dict]:
        return [a for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == name]

    def stop(self) -> None:
        self.child.stop()


def grafana_builder():
    """grafana/build.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("grafana_build", GRAFANA / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def dashboard_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target."""
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]


def variable_selectors(dashboard: dict) -> list[tuple[str, str, str]]:
    """(variable, selector, label) of every label_values(selector, label) variable."""
    found = []
    for v in dashboard["templating"]["list"]:
        if v["type"] == "query":
            m = re.fullmatch(r"label_values\((.*), *(\w+)\)", v["query"])
            assert m, v["query"]
            found.append((v["name"], m.group(1), m.group(2)))
    return found


def alert_rule_queries(provisioning: dict) -> list[tuple[str, str]]:
    """(rule title, PromQL) of every Prometheus query of the Grafana-managed rules."""
    return [
        (r["title"], d["model"]["expr"])
        for g in provisioning["groups"]
        for r in g["rules"]
        for d in r["data"]
        if d["datasourceUid"] != "__expr__"
    ]
