"""End to end on a real Prometheus, with [exporter] compatibility = openstack-exporter: Nova and
Cinder on MariaDB, heartbeats written by this test, and the alerts packs write on openstack-exporter's
families (deploy/prometheus/compat/openstack-exporter-alerts.yml) evaluated by Prometheus itself.

Those alerts wait 5 minutes to a day; Prometheus loads a copy with every `for:` set to 3 s,
expressions untouched.
"""

from __future__ import annotations

import pytest
import yaml
from cloud import insert_services, service
from promserver import ROOT, Prometheus, start_exporter, wait_for
from test_cinder import insert
from test_cinder import service as cinder_service
from test_prometheus_e2e import CinderHeartbeats, Heartbeats, utcnow

pytestmark = pytest.mark.e2e

ALERTS = ROOT / "deploy" / "prometheus" / "compat" / "openstack-exporter-alerts.yml"
DOWN_TIME = 4  # seconds, both projects; heartbeats every second


def quick(text: str) -> str:
    data = yaml.safe_load(text)
    for group in data["groups"]:
        for rule in group["rules"]:
            rule["for"] = "3s"
    return yaml.safe_dump(data, sort_keys=False)


@pytest.fixture
def clouds(mariadb, new_db):
    nova_db, cinder_db = new_db("services"), new_db("cinder")
    now = utcnow()
    insert_services(
        mariadb,
        nova_db,
        [
            service("ctl-1", "nova-conductor", last_seen_up=now),
            service("ctl-1", "nova-scheduler", last_seen_up=now),
            service("cmp-1", last_seen_up=now),
            service("cmp-2", last_seen_up=now),
            service("cmp-off", last_seen_up=now, disabled=1, disabled_reason="RMA-42"),
        ],
    )
    insert(
        mariadb,
        cinder_db,
        [
            cinder_service("ctl-1", "cinder-scheduler", updated_at=now),
            cinder_service("st-1@lvm", updated_at=now),
            cinder_service("st-2@lvm", updated_at=now),
            cinder_service("st-off@lvm", updated_at=now, disabled=1, disabled_reason="maintenance"),
        ],
    )
    beats = [Heartbeats(mariadb, nova_db, set()), CinderHeartbeats(mariadb, cinder_db, set())]
    for b in beats:
        b.start()
    yield mariadb.url(nova_db), mariadb.url(cinder_db), beats
    for b in beats:
        b.stop()


@pytest.fixture
def prometheus(clouds, tmp_path):
    nova_url, cinder_url, _ = clouds
    (tmp_path / "empty.conf").write_text("")
    (tmp_path / "cinder.conf").write_text(
        f"[DEFAULT]\nservice_down_time = {DOWN_TIME}\n[database]\nconnection = {cinder_url}\n"
    )
    child, url = start_exporter(
        [
            "--config-file",
            str(tmp_path / "empty.conf"),
            "--database-connection",
            nova_url,
            "--service_down_time",
            str(DOWN_TIME),
            "--report_interval",
            "1",
            "--cinder-config_file",
            str(tmp_path / "cinder.conf"),
            "--exporter-compatibility",
            "openstack-exporter",
            "serve",
        ],
        tmp_path / "exporter.log",
    )
    rules = tmp_path / "alerts.yml"
    rules.write_text(quick(ALERTS.read_text()))
    server = Prometheus(tmp_path, url.removeprefix("http://").removesuffix("/metrics"), rules)
    yield server
    server.stop()
    child.stop()


def firing(prometheus: Prometheus, name: str) -> set[tuple[str, str]]:
    """(service, hostname) of the firing alerts `name` (hostname "" for the by (service) ones)."""
    return {
        (a["labels"]["service"], a["labels"].get("hostname", ""))
        for a in prometheus.alerts(name)
        if a["state"] == "firing"
    }


DOWN = ("NovaServiceDown", "NovaServiceGroupDown", "CinderAgentDown", "CinderAgentGroupDown")


def test_pack_alerts_fire_for_down_and_disabled_services_and_stay_quiet_otherwise(clouds, prometheus):
    _, _, (nova_beats, cinder_beats) = clouds
    wait_for(
        "the 9 services in Prometheus, all up",
        lambda: (
            len(prometheus.query("openstack_nova_agent_state == 1")) == 5
            and len(prometheus.query("openstack_cinder_agent_state == 1")) == 4
        ),
    )
    wait_for(
        "the Disabled alerts",
        lambda: firing(prometheus, "NovaServiceDisabled") and firing(prometheus, "CinderAgentDisabled"),
    )
    assert firing(prometheus, "NovaServiceDisabled") == {("nova-compute", "cmp-off")}
    assert firing(prometheus, "CinderAgentDisabled") == {("cinder-volume", "st-off@lvm")}
    assert {name: firing(prometheus, name) for name in DOWN} == {name: set() for name in DOWN}

    nova_beats.stopped |= {"cmp-1", "ctl-1"}
    cinder_beats.stopped |= {"st-1@lvm", "ctl-1"}
    expected = {
        "NovaServiceDown": {("nova-compute", "cmp-1"), ("nova-conductor", "ctl-1"), ("nova-scheduler", "ctl-1")},
        # sum by (service) == 0: every service of the binary down
        "NovaServiceGroupDown": {("nova-conductor", ""), ("nova-scheduler", "")},
        "CinderAgentDown": {("cinder-volume", "st-1@lvm"), ("cinder-scheduler", "ctl-1")},
        # min by (service) == 0: any one down
        "CinderAgentGroupDown": {("cinder-volume", ""), ("cinder-scheduler", "")},
    }
    wait_for("the Down alerts", lambda: all(firing(prometheus, n) == s for n, s in expected.items()), timeout=60)
    (alert,) = [a for a in prometheus.alerts("NovaServiceDown") if a["labels"]["hostname"] == "cmp-1"]
    labels = alert["labels"]
    assert set(labels) == {
        "alertname",
        "severity",
        "id",
        "hostname",
        "service",
        "adminState",
        "zone",
        "instance",
        "job",
    }  # disabledReason "" is no label once ingested
    assert labels["adminState"] == "enabled" and len(labels["id"]) == 36  # the row's uuid
    (alert,) = [a for a in prometheus.alerts("CinderAgentDown") if a["labels"]["hostname"] == "st-1@lvm"]
    assert alert["labels"]["zone"] == "nova" and len(alert["labels"]["uuid"]) == 36

    nova_beats.stopped.clear()
    cinder_beats.stopped.clear()
    wait_for("the Down alerts to resolve", lambda: not any(prometheus.alerts(name) for name in DOWN), timeout=60)
    assert all(b.is_alive() and b.error is None for b in (nova_beats, cinder_beats))
