"""End to end on a real Prometheus: the exporter serves a MariaDB-backed cloud whose heartbeats this
test writes; Prometheus scrapes it every second and evaluates the shipped rules.yml.

The rules' `for:` durations are minutes; Prometheus loads a copy with every `for:` divided by 60
(3m -> 3s, see promserver.shortened_rules), expressions, labels and annotations untouched.
"""
from __future__ import annotations

import datetime
import threading
from contextlib import closing

import pytest
import yaml

from cloud import add_cell, add_zone, insert_services, service
from promserver import (Prometheus, RULES, alert_rule_queries, dashboard_queries, grafana_builder,
                        shortened_rules, start_exporter, variable_selectors, wait_for)

pytestmark = pytest.mark.e2e

DOWN_TIME = 4  # seconds, with report_interval 1: heartbeats every second leave ample margin
STOPPED = "cmp-1"
# Dashboard variables and Grafana's interval macros, as an instant query can take them.
SUBSTITUTIONS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m",
                 "$cell": ".*", "$zone": ".*", "$binary": ".*", "$host": ".*"}


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)


class Heartbeats(threading.Thread):
    """Writes what a live Nova service writes every second, for every host not stopped."""

    UPDATE = ("UPDATE services SET last_seen_up = UTC_TIMESTAMP(), updated_at = UTC_TIMESTAMP(), "
              "report_count = report_count + 1 WHERE deleted = 0 AND host NOT IN %s")

    def __init__(self, mariadb, database: str, dead: set[str]):
        super().__init__(name="heartbeats", daemon=True)
        self.conn = mariadb.admin(database)
        self.stopped = set(dead)
        self.done = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        with closing(self.conn), self.conn.cursor() as cur:
            while not self.done.is_set():
                try:
                    skip = sorted(self.stopped) or [""]
                    cur.execute(self.UPDATE, (skip,))
                except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in a thread
                    self.error = exc
                    return
                self.done.wait(1.0)

    def stop(self) -> None:
        self.done.set()
        self.join(10)


@pytest.fixture
def cloud(mariadb, new_db):
    """A cell with a controller, three live computes in two zones, a retired (disabled, dead)
    compute and a fenced (forced-down) one."""
    api, cell = new_db("api"), new_db("services")
    add_cell(mariadb, api, "cell1", mariadb.url(cell))
    add_zone(mariadb, api, "agg-az1", ["cmp-1", "cmp-2"], "az1")
    add_zone(mariadb, api, "agg-az2", ["cmp-3", "cmp-retired", "cmp-fenced"], "az2")
    now = utcnow()
    old = now - datetime.timedelta(days=3)
    insert_services(mariadb, cell, [
        service("ctl-1", "nova-conductor", last_seen_up=now, updated_at=now),
        service("ctl-1", "nova-scheduler", last_seen_up=now, updated_at=now),
        service("cmp-1", last_seen_up=now, updated_at=now),
        service("cmp-2", last_seen_up=now, updated_at=now),
        service("cmp-3", last_seen_up=now, updated_at=now),
        service("cmp-retired", last_seen_up=old, updated_at=old, disabled=1,
                disabled_reason="AUTO: Connection to libvirt lost: 1"),
        service("cmp-fenced", last_seen_up=now, updated_at=now, forced_down=1),
    ])
    beats = Heartbeats(mariadb, cell, dead={"cmp-retired"})
    beats.start()
    yield {"api": mariadb.url(api), "cell": mariadb.url(cell), "heartbeats": beats}
    beats.stop()


@pytest.fixture
def exporter_url(cloud, tmp_path):
    child, url = start_exporter(
        ["--database-connection", cloud["cell"], "--api_database-connection", cloud["api"],
         "--service_down_time", str(DOWN_TIME), "--report_interval", "1", "serve"], tmp_path / "exporter.log")
    yield url
    child.stop()


@pytest.fixture
def prometheus(exporter_url, tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(shortened_rules(RULES.read_text()))
    target = exporter_url.removeprefix("http://").removesuffix("/metrics")
    server = Prometheus(tmp_path, target, rules)
    yield server
    server.stop()


def service_down_alerts(prometheus: Prometheus) -> list[dict]:
    """NovaServiceDown alerts of the stopped host. (Another live host may go pending if a loaded
    machine stalls the heartbeat thread for seconds; that is not what this test is about.)"""
    alerts = prometheus.alerts("NovaServiceDown")
    # The retired (disabled) and the fenced (forced-down) computes are down, but must never page.
    assert not {a["labels"]["host"] for a in alerts} & {"cmp-retired", "cmp-fenced"}, alerts
    return [a for a in alerts if a["labels"]["host"] == STOPPED]


def substitute(expr: str) -> str:
    for variable, value in sorted(SUBSTITUTIONS.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(variable, value)
    return expr


def test_service_down_fires_and_resolves_and_every_grafana_query_answers(cloud, prometheus):
    beats = cloud["heartbeats"]
    wait_for("the 7 services in Prometheus, the 5 live ones up",
             lambda: len(prometheus.query("service_up")) == 7 and len(prometheus.query("service_up == 1")) == 5)
    wait_for("the recording rules", lambda: prometheus.query("zone:service_compute_down:ratio"))
    assert service_down_alerts(prometheus) == []

    beats.stopped.add(STOPPED)
    states = []

    def firing():
        alerts = service_down_alerts(prometheus)
        states.extend(a["state"] for a in alerts)
        return "firing" in states

    wait_for(f"NovaServiceDown for {STOPPED} to fire", firing, timeout=40, every=0.1)
    assert "pending" in states and states.index("pending") < states.index("firing"), states
    alert = service_down_alerts(prometheus)[0]
    assert alert["labels"] == {"alertname": "NovaServiceDown", "severity": "warning", "project": "nova", "cell": "cell1",
                               "binary": "nova-compute", "host": STOPPED, "zone": "az1",
                               "instance": alert["labels"]["instance"], "job": "openstack-service-exporter"}
    assert alert["annotations"]["summary"] == 'nova-compute on cmp-1 is down (zone az1, cell "cell1")'

    beats.stopped.discard(STOPPED)
    wait_for("NovaServiceDown to resolve", lambda: service_down_alerts(prometheus) == [], timeout=40)
    assert beats.is_alive() and beats.error is None, beats.error

    build = grafana_builder()
    dashboard = build.dashboard(build.load_rules())
    queries = dashboard_queries(dashboard) + alert_rule_queries(build.alert_rules_file(build.load_rules()))
    empty = [(where, expr) for where, expr in queries if not prometheus.query(substitute(expr))]
    assert not empty, f"queries without data: {empty}"
    for name, selector, label in variable_selectors(dashboard):
        series = prometheus.query(substitute(selector))
        assert series and all(label in s["metric"] for s in series), f"variable {name}: {selector}"


def test_the_shortened_rules_differ_only_in_for():
    shipped = yaml.safe_load(RULES.read_text())
    short = yaml.safe_load(shortened_rules(RULES.read_text()))
    for group, short_group in zip(shipped["groups"], short["groups"], strict=True):
        for rule, short_rule in zip(group["rules"], short_group["rules"], strict=True):
            assert {k: v for k, v in rule.items() if k != "for"} == {k: v for k, v in short_rule.items() if k != "for"}
    service_down = next(r for g in short["groups"] for r in g["rules"] if r.get("alert") == "NovaServiceDown")
    assert service_down["for"] == "3s"
