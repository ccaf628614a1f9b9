"""[exporter] compatibility = openstack-exporter: its agent-state families, pinned label by label.

Where each name and label comes from, in openstack-exporter (github.com/openstack-exporter/openstack-exporter,
commit a94a54f20b35732da91490118e01462a3e1036b1):

  family name  exporters/exporter.go, GetName (l. 97-99: "<prefix>_<service>") and AddMetric
               (l. 222-223: prometheus.BuildFQName(GetName(), "", name), HELP = name); main.go l. 48:
               --prefix, default "openstack".
  nova         exporters/nova.go: labels declared in defaultNovaMetrics (l. 78: id, hostname, service,
               adminState, zone, disabledReason); values in ListNovaAgentState (l. 156: 1 iff
               service.State == "up"; l. 160: service.ID, .Host, .Binary, .Status, .Zone,
               .DisabledReason). ID is services.uuid from microversion 2.53 on; it asks for 2.87
               (l. 28, novaLatestSupportedMicroversion) or the cloud's newest.
  cinder       exporters/cinder.go: labels in defaultCinderMetrics (l. 51: uuid, hostname, service,
               adminState, zone, disabledReason); values in ListCinderAgentState (l. 203: 1 iff
               service.State == "up"; l. 206-207: uuid from UUIDGenFunc, random at every scrape, its
               issue #190, "" with --disable-cinder-agent-uuid (main.go l. 54); l. 213: .Host,
               .Binary, .Status, .Zone, .DisabledReason). Here uuid is the row's own.
  neutron      exporters/neutron.go: labels in defaultNeutronMetrics (l. 123: id, hostname, service,
               adminState, availability_zone); values in ListAgentStates (l. 213: 1 iff agent.Alive;
               l. 218: adminState "up" iff agent.AdminStateUp, else "down"; l. 222: agent.ID; l. 229:
               agent.AvailabilityZone; l. 232: .Host, .Binary).

Regenerate after a deliberate change with: UPDATE_GOLDEN=1 python3 -m pytest tests/test_compat.py
"""

from __future__ import annotations

import datetime
from typing import NamedTuple

import pytest
from cloud import T
from helpers import API_CELL, CellHealth, nova_snapshot, samples, to_us
from test_golden_exposition import check

from openstack_service_exporter.collector import compatibility_families, families
from openstack_service_exporter.config import EXPORTER_OPTS, ConfigError, Settings
from openstack_service_exporter.exposition import exposition, render
from openstack_service_exporter.snapshot import DatabaseHealth, Reading, Snapshot
from openstack_service_exporter.sources import COMPATIBILITY
from openstack_service_exporter.sources.base import MICROS, Judged
from openstack_service_exporter.sources.cinder import CinderConfig, CinderRow
from openstack_service_exporter.sources.nova.verdict import ServiceRow

NOW = to_us(T)
COMPAT = Settings(compatibility="openstack-exporter")
CREATED = to_us(datetime.datetime(2012, 9, 18, 2, 46, 27))


def nova_row(cell, id_, host, binary, seen, **kw) -> ServiceRow:
    base = dict(
        topic="compute" if binary == "nova-compute" else binary[len("nova-") :],
        report_count=id_,
        disabled=False,
        disabled_reason=None,
        forced_down=False,
        version=66,
        uuid=f"{cell}-{id_}",
        created_at=CREATED,
        updated_at=seen,
        last_seen_up=seen,
    )
    base.update(kw)
    return ServiceRow(cell, id_, host, binary, base.pop("topic"), **base)


NOVA = [
    nova_row("cell0", 1, "ctl1", "nova-scheduler", NOW - 9 * MICROS),
    nova_row(
        "cell1",
        2,
        "cmp1",
        "nova-compute",
        NOW - 6 * MICROS,
        disabled=True,
        disabled_reason='AUTO: Connection to libvirt lost: "1"',
    ),
    nova_row("cell1", 3, "cmp2", "nova-compute", NOW - 3600 * MICROS),  # down
    nova_row("cell1", 4, "cmp3", "nova-compute", NOW, forced_down=True),  # down: forced
    nova_row("cell1", 5, "cmp4", "nova-compute", NOW, uuid=None),  # no uuid yet: id ""
    nova_row("cell2", 1, "cmp1", "nova-compute", NOW),  # cell1's host and binary: only id tells them apart
]


def cinder_row(id_, host, binary, seen, **kw) -> CinderRow:
    base = dict(
        topic=binary,
        report_count=id_,
        disabled=False,
        disabled_reason=None,
        availability_zone="nova",
        uuid=f"cinder-uuid-{id_}",
        cluster_name=None,
        frozen=False,
        replication_status="disabled",
        active_backend_id=None,
        created_at=CREATED,
        updated_at=seen,
    )
    base.update(kw)
    return CinderRow(id_, host, binary, **base)


CINDER = [
    cinder_row(1, "ctl1", "cinder-scheduler", NOW - 10 * MICROS),
    cinder_row(2, "ctl1@lvm", "cinder-volume", NOW - 5 * MICROS, disabled=True, disabled_reason="RMA-42"),
    cinder_row(3, "ctl2@ceph", "cinder-volume", NOW - 61 * MICROS, availability_zone="az2"),  # down
    cinder_row(
        4,
        "bak1",
        "cinder-backup",
        None,
        created_at=NOW - 20 * MICROS,
        uuid=None,  # pre-Queens row
        availability_zone=None,
    ),
]


class NeutronRow(NamedTuple):
    """The Neutron source's row, field for field (its module is not on this branch)."""

    id: str
    agent_type: str
    topic: str | None
    admin_state_up: bool
    availability_zone: str | None
    host: str
    binary: str
    heartbeat_timestamp: int
    started_at: int
    created_at: int


def neutron_judged(row: NeutronRow, alive: bool) -> Judged:
    """As the Neutron source judges: zone = availability_zone or "", disabled = not admin_state_up, up = alive."""
    return Judged(
        "neutron",
        "",
        row.binary,
        row.host,
        row.availability_zone or "",
        alive,
        row.heartbeat_timestamp,
        NOW - row.heartbeat_timestamp,
        not row.admin_state_up,
        row,
    )


def neutron_row(id_, agent_type, host, binary, admin_state_up=True, zone=None) -> NeutronRow:
    return NeutronRow(id_, agent_type, None, admin_state_up, zone, host, binary, NOW - 3 * MICROS, CREATED, CREATED)


NEUTRON = [
    neutron_judged(neutron_row("1f0c4d8e-0001", "Open vSwitch agent", "cmp1", "neutron-openvswitch-agent"), True),
    neutron_judged(
        neutron_row("1f0c4d8e-0002", "L3 agent", "net1", "neutron-l3-agent", admin_state_up=False, zone="nova"), True
    ),
    neutron_judged(neutron_row("1f0c4d8e-0003", "DHCP agent", "net2", "neutron-dhcp-agent", zone="nova"), False),
]


class NeutronStandIn:
    """A configured Neutron that answers with NEUTRON: what the core asks of any configured source."""

    project = "neutron"
    families = ()
    info_labels = ()
    down_time = 75
    notes = ()

    @property
    def source(self):
        return self

    def judge(self, reading, now):
        return list(NEUTRON)

    def health_families(self, reading, prefix):
        return ()


NEUTRON_SOURCE = NeutronStandIn()


def cloud() -> Snapshot:
    nova = nova_snapshot(
        NOW,
        NOVA,
        [
            CellHealth("cell0", True, 0.01, skew=0.0),
            CellHealth("cell1", True, 0.01, skew=0.0),
            CellHealth("cell2", True, 0.01, skew=0.0),
        ],
        api=CellHealth(API_CELL, True, 0.003),
        host_zones={"cmp1": "az1", "cmp2": "az1,az2"},
        zones_known=True,
    )
    cinder = Reading(
        CinderConfig("sqlite://", service_down_time=60), CINDER, [DatabaseHealth("cinder", "", True, 0.01, skew=0.0)]
    )
    neutron = Reading(NEUTRON_SOURCE, [j.row for j in NEUTRON], [DatabaseHealth("neutron", "", True, 0.01, skew=0.0)])
    return Snapshot(now=NOW, readings=nova.readings + [cinder, neutron])


def test_golden_compat_families():
    text = render(compatibility_families(cloud(), COMPAT)).decode()
    check("compat.prom", text)
    got = samples(text)
    nova = {
        dict(labels)["id"]: (dict(labels), value)
        for (name, labels), value in got.items()
        if name == "openstack_nova_agent_state"
    }
    assert len(nova) == len(NOVA)
    assert nova["cell1-2"] == (
        {
            "id": "cell1-2",
            "hostname": "cmp1",
            "service": "nova-compute",
            "adminState": "disabled",
            "zone": "az1",
            "disabledReason": 'AUTO: Connection to libvirt lost: "1"',
        },
        1.0,
    )
    assert nova["cell2-1"] == (
        {
            "id": "cell2-1",
            "hostname": "cmp1",
            "service": "nova-compute",
            "adminState": "enabled",
            "zone": "az1",
            "disabledReason": "",
        },
        1.0,
    )
    assert nova["cell0-1"][0]["zone"] == "internal" and nova["cell0-1"][1] == 1.0
    assert {nova[i][1] for i in ("cell1-3", "cell1-4")} == {0.0}  # a stale heartbeat; forced down
    assert nova[""][0]["hostname"] == "cmp4"
    cinder = {
        dict(labels)["hostname"]: (dict(labels), value)
        for (name, labels), value in got.items()
        if name == "openstack_cinder_agent_state"
    }
    assert cinder["ctl1@lvm"] == (
        {
            "uuid": "cinder-uuid-2",
            "hostname": "ctl1@lvm",
            "service": "cinder-volume",
            "adminState": "disabled",
            "zone": "nova",
            "disabledReason": "RMA-42",
        },
        1.0,
    )
    assert cinder["ctl2@ceph"][1] == 0.0 and cinder["bak1"][0]["uuid"] == cinder["bak1"][0]["zone"] == ""
    neutron = {
        dict(labels)["id"]: (dict(labels), value)
        for (name, labels), value in got.items()
        if name == "openstack_neutron_agent_state"
    }
    assert neutron["1f0c4d8e-0002"] == (
        {
            "id": "1f0c4d8e-0002",
            "hostname": "net1",
            "service": "neutron-l3-agent",
            "adminState": "down",
            "availability_zone": "nova",
        },
        1.0,
    )
    assert neutron["1f0c4d8e-0001"][0]["adminState"] == "up" and neutron["1f0c4d8e-0001"][0]["availability_zone"] == ""
    assert neutron["1f0c4d8e-0003"][1] == 0.0


def test_both_writers_agree_and_the_native_families_are_untouched():
    snapshot = cloud()
    plain = render(families(snapshot, Settings(), NOW, "pymysql")).decode()
    with_compat = render(families(snapshot, COMPAT, NOW, "pymysql")).decode()
    assert b"".join(exposition(snapshot, COMPAT, NOW, "pymysql")).decode() == with_compat
    assert "agent_state" not in plain  # off by default
    compat = render(compatibility_families(snapshot, COMPAT)).decode()
    assert with_compat == plain + compat


def test_the_prefix_is_openstack_exporters_and_metric_prefix_leaves_it_alone():
    settings = Settings(compatibility="openstack-exporter", compatibility_prefix="os", metric_prefix="x_")
    names = {f.name for f in compatibility_families(cloud(), settings)}
    assert names == {"os_nova_agent_state", "os_cinder_agent_state", "os_neutron_agent_state"}
    # BuildFQName("_nova", "", "agent_state"): an empty --prefix there leaves the underscore
    names = {
        f.name
        for f in compatibility_families(cloud(), Settings(compatibility="openstack-exporter", compatibility_prefix=""))
    }
    assert "_nova_agent_state" in names


def test_only_configured_projects_have_a_family():
    only_cinder = Snapshot(now=NOW, readings=[r for r in cloud().readings if r.project == "cinder"])
    assert [f.name for f in compatibility_families(only_cinder, COMPAT)] == ["openstack_cinder_agent_state"]


def test_no_duplicate_series_even_when_every_label_is_alike():
    """Two cells with the same host and binary and no uuid yet: one series (the first cell's), not two."""
    twins = [
        nova_row("cell1", 7, "cmp9", "nova-compute", NOW, uuid=None),
        nova_row("cell2", 7, "cmp9", "nova-compute", NOW - 3600 * MICROS, uuid=None),
    ]
    snapshot = nova_snapshot(NOW, twins, [CellHealth("cell1", True, 0.01), CellHealth("cell2", True, 0.01)])
    (family,) = compatibility_families(snapshot, COMPAT)
    assert [(s.labels["id"], s.value) for s in family.samples] == [("", 1.0)]
    samples(render([family]).decode())  # the parser's own duplicate check


def test_option_choices_are_the_modes_the_sources_offer():
    (option,) = [o for o in EXPORTER_OPTS if o.dest == "compatibility"]
    assert set(option.type.choices) == {""} | set(COMPATIBILITY)


@pytest.mark.parametrize("prefix", ["1os", "os-exporter", "os exporter"])
def test_a_bad_compatibility_prefix_is_refused(prefix):
    with pytest.raises(ConfigError, match="compatibility_prefix"):
        Settings(compatibility="openstack-exporter", compatibility_prefix=prefix)


def test_served_from_real_databases_the_families_say_what_list_says(mariadb, new_db, tmp_path):
    """Nova and Cinder on MariaDB, served over HTTP with the option on: every compat series is one
    listed service with its labels and verdict, and the other way round."""
    from cloud import insert_services, service
    from helpers import list_json, scrape, served
    from test_cinder import insert
    from test_cinder import service as cinder_service

    from openstack_service_exporter.config import load
    from openstack_service_exporter.sources import SOURCES

    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    nova_db, cinder_db = new_db("services"), new_db("cinder")
    insert_services(
        mariadb,
        nova_db,
        [
            service("ctl1", "nova-scheduler", last_seen_up=now),
            service("cmp1", last_seen_up=now, disabled=1, disabled_reason="RMA-7"),
            service("cmp2", last_seen_up=now - datetime.timedelta(hours=1)),
        ],
    )
    insert(
        mariadb,
        cinder_db,
        [
            cinder_service("ctl1", "cinder-scheduler", updated_at=now),
            cinder_service("ctl1@lvm", updated_at=now - datetime.timedelta(hours=1), availability_zone="az2"),
            cinder_service("ctl2@lvm", updated_at=now, disabled=1, disabled_reason="maintenance"),
        ],
    )
    cinder_conf = tmp_path / "cinder.conf"
    cinder_conf.write_text(f"[database]\nconnection = {mariadb.url(cinder_db)}\n")
    empty = tmp_path / "empty.conf"
    empty.write_text("")
    argv = [
        "--config-file",
        str(empty),
        "--database-connection",
        mariadb.url(nova_db),
        "--cinder-config_file",
        str(cinder_conf),
        "--exporter-compatibility",
        "openstack-exporter",
    ]
    with served(load(argv, SOURCES, default_config_files=[])) as (base, _):
        got = samples(scrape(base))
    listed = list_json(argv)
    series = {}
    for (name, labels), value in got.items():
        if name.endswith("_agent_state"):
            labels = dict(labels)
            series[(name, labels.pop("id", None) or labels.pop("uuid"))] = (labels, value)
    expected = {}
    for r in listed:
        # Nova's uuid is not in its list record: read it from the row
        key = (
            r.get("uuid")
            or mariadb.execute(
                "SELECT uuid FROM services WHERE host = %s AND `binary` = %s",
                (r["host"], r["binary"]),
                database=nova_db,
            )[0][0]
        )
        expected[(f"openstack_{r['project']}_agent_state", key)] = (
            {
                "hostname": r["host"],
                "service": r["binary"],
                "adminState": r["status"],
                "zone": r["zone"],
                "disabledReason": r["disabled_reason"] or "",
            },
            1.0 if r["state"] == "up" else 0.0,
        )
    assert series == expected
    assert {v for _, v in series.values()} == {0.0, 1.0} and len(series) == 6


# -- the alerts packs write on these families: promtool, and the names they use --------------------


def compat_rules():
    import yaml
    from promserver import ROOT

    path = ROOT / "deploy" / "prometheus" / "compat" / "openstack-exporter-alerts.yml"
    return path, [r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]


def test_pack_alerts_pass_promtool_check_and_are_tested_firing_and_quiet():
    import yaml
    from promserver import RULE_TESTS, promtool

    path, rules = compat_rules()
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout
    tests = RULE_TESTS / "compat_test.yml"
    result = promtool("test", "rules", str(tests))
    assert result.returncode == 0, result.stdout
    cases = [c for g in yaml.safe_load(tests.read_text())["tests"] for c in g["alert_rule_test"]]
    for rule in rules:
        mine = [c for c in cases if c["alertname"] == rule["alert"]]
        assert any(c["exp_alerts"] for c in mine) and any(not c["exp_alerts"] for c in mine), rule["alert"]


def test_pack_alerts_select_only_families_and_labels_the_exporter_writes():
    from promserver import metric_names

    written = {f.name: set(f.samples[0].labels) for f in compatibility_families(cloud(), COMPAT)}
    _, rules = compat_rules()
    for rule in rules:
        (name,) = metric_names(rule["expr"])
        assert name in written, rule["alert"]
        # adminState and service: the labels the packs select and aggregate by
        assert {"adminState", "service"} <= written[name]
