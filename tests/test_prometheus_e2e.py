"""End to end on a real Prometheus: the exporter serves a MariaDB-backed cloud (a Nova cell, Cinder's,
Neutron's and Ironic's databases, and OVN's northbound and southbound ovsdb-servers for Neutron's
ML2/OVN agents) whose heartbeats this test writes; Prometheus scrapes it every second and evaluates the
shipped rules.yml.

The rules' `for:` durations are minutes; Prometheus loads a copy with every `for:` divided by 60
(3m -> 3s, see promserver.shortened_rules), expressions, labels and annotations untouched.
"""

from __future__ import annotations

import datetime
import re
import threading
import time

import pytest
import yaml
from cloud import add_cell, add_zone, insert_services, service
from ovsdb_server import OvnDatabases
from promserver import (
    RULES,
    Prometheus,
    alert_rule_queries,
    dashboard_queries,
    grafana_builder,
    pending_projects,
    registered_sources,
    shortened_rules,
    start_exporter,
    variable_selectors,
    wait_for,
)
from test_cinder import cinder_conf
from test_cinder import insert as insert_cinder
from test_cinder import service as cinder_service
from test_ironic import conductor, ironic_conf
from test_neutron import agent, dhcp, neutron_files

from openstack_service_exporter import demo_ovn

pytestmark = pytest.mark.e2e

DOWN_TIME = 4  # seconds, with report_interval 1: heartbeats every second leave ample margin
STOPPED = "cmp-1"
CINDER_STOPPED = "stor-1@ceph"
OVN_STOPPED = demo_ovn.DYING  # its ovn-controller, and its metadata agent with it
SERVED = {"nova", "cinder", "neutron", "ironic"}  # the projects this cloud has
# Dashboard variables and Grafana's interval macros, as an instant query can take them.
SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "5m",
    "$project": ".*",
    "$cell": ".*",
    "$zone": ".*",
    "$binary": ".*",
    "$host": ".*",
}


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)


class Beats(threading.Thread):
    """Every second, what the live services write (`beat`), until stopped; a failure is kept in
    `error` for the test, not lost in the thread."""

    def __init__(self, name: str, dead: set[str]):
        super().__init__(name=name, daemon=True)
        self.stopped = set(dead)
        self.done = threading.Event()
        self.error: Exception | None = None

    def beat(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def run(self) -> None:
        try:
            while not self.done.is_set():
                self.beat()
                self.done.wait(1.0)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.close()

    def stop(self) -> None:
        self.done.set()
        self.join(10)


class Heartbeats(Beats):
    """Writes what a live Nova service writes every second, for every host not stopped."""

    UPDATE = (
        "UPDATE services SET last_seen_up = UTC_TIMESTAMP(), updated_at = UTC_TIMESTAMP(), "
        "report_count = report_count + 1 WHERE deleted = 0 AND host NOT IN %s"
    )

    def __init__(self, mariadb, database: str, dead: set[str]):
        super().__init__("heartbeats", dead)
        self.conn = mariadb.admin(database)

    def beat(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute(self.UPDATE, (sorted(self.stopped) or [""],))

    def close(self) -> None:
        self.conn.close()


class CinderHeartbeats(Heartbeats):
    """What a live Cinder service writes (cinder/service.py, Service.report_state)."""

    UPDATE = (
        "UPDATE services SET updated_at = UTC_TIMESTAMP(), report_count = report_count + 1 "
        "WHERE deleted = 0 AND host NOT IN %s"
    )


class NeutronHeartbeats(Heartbeats):
    """What neutron-server writes when an agent reports (neutron/db/agents_db.py, create_or_update_agent)."""

    UPDATE = "UPDATE agents SET heartbeat_timestamp = UTC_TIMESTAMP() WHERE host NOT IN %s"


class IronicHeartbeats(Heartbeats):
    """What a live conductor writes (ironic/db/sqlalchemy/api.py, touch_conductor)."""

    UPDATE = "UPDATE conductors SET updated_at = UTC_TIMESTAMP(), online = 1 WHERE hostname NOT IN %s"


class OvnHeartbeats(Beats):
    """What listing the agents every second leaves in OVN's databases: neutron-server's ping and the
    echoes of the live agents (the demo's chassis: a gateway, one lagging a ping, one dead for good;
    openstack_service_exporter/demo_ovn.py)."""

    def __init__(self, dbs: OvnDatabases):
        super().__init__("ovn-heartbeats", set())
        self.dbs = dbs
        self.nb_cfg = demo_ovn.FIRST_NB_CFG

    def beat(self) -> None:
        self.nb_cfg += 1
        demo_ovn.beat(self.dbs, self.nb_cfg, set(self.stopped))


@pytest.fixture
def cloud(mariadb, new_db, tmp_path):
    """A cell with a controller, three live computes in two zones, a retired (disabled, dead)
    compute and a fenced (forced-down) one; Cinder with a scheduler, a backup service, an lvm
    backend and a ceph backend on two hosts; Neutron's Open vSwitch, DHCP and L3 agents, and ML2/OVN
    chassis in OVN's databases; two Ironic conductors."""
    api, cell = new_db("api"), new_db("services")
    add_cell(mariadb, api, "cell1", mariadb.url(cell))
    add_zone(mariadb, api, "agg-az1", ["cmp-1", "cmp-2"], "az1")
    add_zone(mariadb, api, "agg-az2", ["cmp-3", "cmp-retired", "cmp-fenced"], "az2")
    now = utcnow()
    old = now - datetime.timedelta(days=3)
    insert_services(
        mariadb,
        cell,
        [
            service("ctl-1", "nova-conductor", last_seen_up=now, updated_at=now),
            service("ctl-1", "nova-scheduler", last_seen_up=now, updated_at=now),
            service("cmp-1", last_seen_up=now, updated_at=now),
            service("cmp-2", last_seen_up=now, updated_at=now),
            service("cmp-3", last_seen_up=now, updated_at=now),
            service(
                "cmp-retired",
                last_seen_up=old,
                updated_at=old,
                disabled=1,
                disabled_reason="AUTO: Connection to libvirt lost: 1",
            ),
            service("cmp-fenced", last_seen_up=now, updated_at=now, forced_down=1),
        ],
    )
    beats = Heartbeats(mariadb, cell, dead={"cmp-retired"})
    cinder = new_db("cinder")
    insert_cinder(
        mariadb,
        cinder,
        [
            cinder_service(host, binary, created_at=now, updated_at=now)
            for host, binary in (
                ("ctl-1", "cinder-scheduler"),
                ("ctl-1", "cinder-backup"),
                ("ctl-1@lvm", "cinder-volume"),
                ("stor-1@ceph", "cinder-volume"),
                ("stor-2@ceph", "cinder-volume"),
            )
        ],
    )
    cinder_beats = CinderHeartbeats(mariadb, cinder, dead=set())
    neutron = new_db("neutron")
    mariadb.insert(
        neutron,
        "agents",
        [
            agent("cmp-1", heartbeat_timestamp=now),
            agent("cmp-2", heartbeat_timestamp=now),
            dhcp("net-1", heartbeat_timestamp=now, availability_zone="az1"),
            agent(
                "net-1",
                "L3 agent",
                "neutron-l3-agent",
                topic="l3_agent",
                heartbeat_timestamp=now,
                availability_zone="az1",
            ),
        ],
    )
    neutron_beats = NeutronHeartbeats(mariadb, neutron, dead=set())
    ironic = new_db("ironic")
    mariadb.insert(
        ironic,
        "conductors",
        [
            conductor(1, "bm-1", updated_at=now, conductor_group="rack-a"),
            conductor(2, "bm-2", updated_at=now, conductor_group="rack-a"),
        ],
    )
    ironic_beats = IronicHeartbeats(mariadb, ironic, dead=set())
    ovn = OvnDatabases(tmp_path / "ovn").start()
    ovn.set_nb_cfg(demo_ovn.FIRST_NB_CFG)
    ovn.set_chassis(demo_ovn.chassis(int(time.time() * 1000)))
    ovn_beats = OvnHeartbeats(ovn)
    every = (beats, cinder_beats, neutron_beats, ironic_beats, ovn_beats)
    for thread in every:
        thread.start()
    yield {
        "api": mariadb.url(api),
        "cell": mariadb.url(cell),
        "cinder": mariadb.url(cinder),
        "neutron": mariadb.url(neutron),
        "ironic": mariadb.url(ironic),
        "ovn": f"ovn_nb_connection = {ovn.nb.tcp}\novn_sb_connection = {ovn.sb.tcp}\n",
        "heartbeats": beats,
        "cinder_heartbeats": cinder_beats,
        "ovn_heartbeats": ovn_beats,
    }
    for thread in every:
        thread.stop()
    ovn.stop()


@pytest.fixture
def exporter_url(cloud, tmp_path):
    child, url = start_exporter(
        [
            "--database-connection",
            cloud["cell"],
            "--api_database-connection",
            cloud["api"],
            "--service_down_time",
            str(DOWN_TIME),
            "--report_interval",
            "1",
            "--cinder-config_file",
            cinder_conf(tmp_path, cloud["cinder"], down_time=DOWN_TIME),
            *(
                arg
                for f in neutron_files(
                    tmp_path / "neutron",
                    cloud["neutron"],
                    down_time=DOWN_TIME,
                    drivers="openvswitch,ovn",
                    ovn=cloud["ovn"],
                )
                for arg in ("--neutron-config_file", f)
            ),
            "--ironic-config_file",
            ironic_conf(tmp_path, cloud["ironic"], timeout=DOWN_TIME),
            "serve",
        ],
        tmp_path / "exporter.log",
    )
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


def service_down_alerts(prometheus: Prometheus, name: str = "NovaServiceDown", host: str = STOPPED) -> list[dict]:
    """The alerts `name` of the stopped `host`. (Another live host may go pending if a loaded
    machine stalls a heartbeat thread for seconds; that is not what this test is about.)"""
    alerts = prometheus.alerts(name)
    # The retired (disabled) and the fenced (forced-down) computes are down, but must never page.
    assert not {a["labels"]["host"] for a in alerts} & {"cmp-retired", "cmp-fenced"}, alerts
    return [a for a in alerts if a["labels"]["host"] == host]


def watch_down_and_back(
    prometheus: Prometheus, beats: Beats, name: str, host: str, binaries: frozenset[str] = frozenset()
) -> list[dict]:
    """Stops `host`'s heartbeat until alert `name` has gone pending, then firing, for it (for each of
    `binaries`, when given); starts it again and waits for the alerts to resolve. Returns the firing
    alerts."""
    beats.stopped.add(host)
    states = []

    def firing():
        alerts = service_down_alerts(prometheus, name, host)
        states.extend(a["state"] for a in alerts)
        fired = [a for a in alerts if a["state"] == "firing"]
        return fired if fired and binaries <= {a["labels"]["binary"] for a in fired} else None

    alerts = wait_for(f"{name} for {host} to fire", firing, timeout=40, every=0.1)
    assert "pending" in states and states.index("pending") < states.index("firing"), states
    beats.stopped.discard(host)
    wait_for(f"{name} to resolve", lambda: service_down_alerts(prometheus, name, host) == [], timeout=40)
    assert beats.is_alive() and beats.error is None, beats.error
    return alerts


def substitute(expr: str) -> str:
    for variable, value in sorted(SUBSTITUTIONS.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(variable, value)
    return expr


def test_service_down_fires_and_resolves_and_every_grafana_query_answers(cloud, prometheus):
    wait_for(
        "the 7 Nova services in Prometheus, the 5 live ones up",
        lambda: (
            len(prometheus.query('service_up{project="nova"}')) == 7
            and len(prometheus.query('service_up{project="nova"} == 1')) == 5
        ),
    )
    wait_for("the 5 Cinder services, all up", lambda: len(prometheus.query('service_up{project="cinder"} == 1')) == 5)
    wait_for(
        "the recording rules",
        lambda: (
            prometheus.query("zone:service_compute_down:ratio")
            and prometheus.query("zone_backend:service_volume_up:sum")
        ),
    )
    assert service_down_alerts(prometheus) == []

    (alert,) = watch_down_and_back(prometheus, cloud["heartbeats"], "NovaServiceDown", STOPPED)
    assert alert["labels"] == {
        "alertname": "NovaServiceDown",
        "severity": "warning",
        "project": "nova",
        "cell": "cell1",
        "binary": "nova-compute",
        "host": STOPPED,
        "zone": "az1",
        "instance": alert["labels"]["instance"],
        "job": "openstack-service-exporter",
    }
    assert alert["annotations"]["summary"] == 'nova-compute on cmp-1 is down (zone az1, cell "cell1")'

    unserved = set(registered_sources()) - SERVED
    assert not unserved, f"registered but not in this cloud: {unserved}; add them here, then their queries count"
    build = grafana_builder()
    dashboard = build.dashboard(build.load_rules())
    queries = dashboard_queries(dashboard) + alert_rule_queries(build.alert_rules_file(build.load_rules()))
    # A query pinned to a project whose source is not registered yet cannot answer: the promtool
    # tests cover its rules until then.
    pending = [
        (where, expr) for where, expr in queries if set(re.findall(r'project="(\w+)"', expr)) & pending_projects()
    ]
    empty = [
        (where, expr)
        for where, expr in queries
        if (where, expr) not in pending and not prometheus.query(substitute(expr))
    ]
    assert not empty, f"queries without data: {empty}"
    for name, selector, label in variable_selectors(dashboard):
        series = prometheus.query(substitute(selector))
        # Only Nova's series have a cell.
        assert series and any(label in s["metric"] for s in series), f"variable {name}: {selector}"


def test_cinder_service_down_fires_and_resolves_and_pages_no_other_project(cloud, prometheus):
    wait_for("the 5 Cinder services up", lambda: len(prometheus.query('service_up{project="cinder"} == 1')) == 5)
    (alert,) = watch_down_and_back(prometheus, cloud["cinder_heartbeats"], "CinderServiceDown", CINDER_STOPPED)
    assert alert["labels"] == {
        "alertname": "CinderServiceDown",
        "severity": "warning",
        "project": "cinder",
        "binary": "cinder-volume",
        "host": CINDER_STOPPED,
        "zone": "nova",
        "instance": alert["labels"]["instance"],
        "job": "openstack-service-exporter",
    }
    assert alert["annotations"]["summary"] == "cinder-volume on stor-1@ceph is down (zone nova)"
    # stor-2@ceph served the backend all along, and no Nova alert was ever raised for a Cinder service:
    # not even pending, at any evaluation of the test.
    ever = "max_over_time(ALERTS{{{}}}[10m])"
    assert prometheus.query(ever.format('alertname="CinderVolumeBackendDown"')) == []
    assert prometheus.query(ever.format('alertname=~"Nova.*", project="cinder"')) == []


def test_ovn_controller_down_fires_and_resolves(cloud, prometheus):
    """ML2/OVN's agents, read from OVN's databases, through real Prometheus: a chassis' ovn-controller
    stops echoing neutron-server's pings, and it and its metadata agent go down, then come back."""
    ovn = 'service_up{project="neutron", binary=~"ovn-controller|neutron-ovn-metadata-agent"}'
    wait_for(
        "the 7 OVN agents, the 5 of live controllers up",
        lambda: len(prometheus.query(ovn)) == 7 and len(prometheus.query(f"{ovn} == 1")) == 5,
    )
    binaries = frozenset({"ovn-controller", "neutron-ovn-metadata-agent"})
    alerts = watch_down_and_back(prometheus, cloud["ovn_heartbeats"], "NeutronAgentDown", OVN_STOPPED, binaries)
    controller = next(a for a in alerts if a["labels"]["binary"] == "ovn-controller")
    assert controller["annotations"]["summary"] == f"ovn-controller on {OVN_STOPPED} is down"
    assert "not RabbitMQ" in controller["annotations"]["description"]
    # The gateway lived all along, neutron-server pinged every second and OVN's databases answered: none
    # of their alerts fired (a loaded machine may stall a scrape or a ping long enough for one to go
    # pending, which is not what this test is about).
    fired = 'max_over_time(ALERTS{alertname=~"NeutronOVN.*|ServiceExporterDatabaseDown", alertstate="firing"}[10m])'
    assert prometheus.query(fired) == []


def test_the_shortened_rules_differ_only_in_for():
    shipped = yaml.safe_load(RULES.read_text())
    short = yaml.safe_load(shortened_rules(RULES.read_text()))
    for group, short_group in zip(shipped["groups"], short["groups"], strict=True):
        for rule, short_rule in zip(group["rules"], short_group["rules"], strict=True):
            assert {k: v for k, v in rule.items() if k != "for"} == {k: v for k, v in short_rule.items() if k != "for"}
    service_down = next(r for g in short["groups"] for r in g["rules"] if r.get("alert") == "NovaServiceDown")
    assert service_down["for"] == "3s"
