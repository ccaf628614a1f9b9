"""Neutron as a source: neutron-server's agent rule on a real MariaDB, its configuration (neutron.conf
and ml2_conf.ini), the ML2/OVN partial answer, and its series."""

from __future__ import annotations

import datetime
import json
import uuid

import pytest
from cloud import T
from freezegun import freeze_time
from helpers import list_json, run_cli, samples, to_us
from mariadb import PASSWORD
from test_exposition import NASTY, NOW, assert_same, row, snapshot_of

from openstack_service_exporter.collector import families
from openstack_service_exporter.config import Settings
from openstack_service_exporter.exposition import exposition, render
from openstack_service_exporter.reader import Reader
from openstack_service_exporter.snapshot import DatabaseHealth, Reading, Snapshot
from openstack_service_exporter.sources.base import MICROS
from openstack_service_exporter.sources.neutron import OVN_NOTE, NeutronConfig, NeutronRow

DAY = datetime.timedelta(days=1)


def seconds(n: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=n)


def agent(host, agent_type="Open vSwitch agent", binary="neutron-openvswitch-agent", **extra) -> dict:
    created = extra.pop("created_at", T - DAY)
    row_ = {
        "id": str(uuid.uuid4()),
        "agent_type": agent_type,
        "binary": binary,
        "topic": "N/A",
        "host": host,
        "admin_state_up": 1,
        "created_at": created,
        "started_at": created,
        "heartbeat_timestamp": T,
        "configurations": "{}",
        "availability_zone": None,
    }
    row_.update(extra)
    return row_


def dhcp(host, **extra) -> dict:
    return agent(host, "DHCP agent", "neutron-dhcp-agent", topic="dhcp_agent", **extra)


def insert(mariadb, database: str, rows: list[dict]) -> None:
    mariadb.insert(database, "agents", rows)


@pytest.fixture
def neutron_db(mariadb, new_db):
    return new_db("neutron")


def neutron_files(
    tmp_path, url: str | None, down_time: int | str | None = None, drivers: str = "openvswitch", ovn: str = ""
) -> list[str]:
    """neutron.conf and plugins/ml2/ml2_conf.ini, laid out as neutron-api reads them."""
    neutron_conf, ml2_conf = tmp_path / "neutron.conf", tmp_path / "plugins" / "ml2" / "ml2_conf.ini"
    ml2_conf.parent.mkdir(parents=True, exist_ok=True)
    neutron_conf.write_text(
        "[DEFAULT]\n"
        + (f"agent_down_time = {down_time}\n" if down_time is not None else "")
        + (f"[database]\nconnection = {url}\n" if url else "")
    )
    ml2_conf.write_text(f"[ml2]\nmechanism_drivers = {drivers}\n" + (f"[ovn]\n{ovn}" if ovn else ""))
    return [str(neutron_conf), str(ml2_conf)]


def config_of(files: list[str]) -> NeutronConfig:
    """The Neutron source as the exporter configures it from `files`."""
    from openstack_service_exporter import config
    from openstack_service_exporter.sources import SOURCES

    (neutron,) = config.load(options(files), SOURCES).sources
    return neutron


def options(files: list[str]) -> list[str]:
    return ["--config-file", "/dev/null", *(arg for f in files for arg in ("--neutron-config_file", f))]


def listed(files: list[str], at: datetime.datetime = T) -> dict[str, dict]:
    with freeze_time(at):
        return {r["host"]: r for r in list_json(options(files))}


def scrape(settings: Settings, at: datetime.datetime = T) -> str:
    """The reference rendering of one reading at `at`, checked equal to the fast writer's."""
    reader = Reader(settings, clock=lambda: to_us(at))
    try:
        snapshot = reader.read()
    finally:
        reader.close()
    text = render(families(snapshot, settings, to_us(at), "pymysql"))
    assert b"".join(exposition(snapshot, settings, to_us(at), "pymysql")) == text
    return text.decode()


def test_neutron_rule_inclusive_without_abs(mariadb, neutron_db, tmp_path):
    insert(
        mariadb,
        neutron_db,
        [
            agent("at", heartbeat_timestamp=T - seconds(30)),  # exactly agent_down_time old: alive
            agent("past", heartbeat_timestamp=T - seconds(31)),  # one second more: down
            agent("ahead", heartbeat_timestamp=T + seconds(31)),  # no abs(): a future heartbeat is alive
            agent("far-ahead", heartbeat_timestamp=T + 3650 * DAY),  # however far ahead
            agent("dead", heartbeat_timestamp=T - DAY),
        ],
    )
    files = neutron_files(tmp_path, mariadb.url(neutron_db), down_time=30)
    records = listed(files)
    assert {h: r["state"] for h, r in records.items()} == {
        "at": "up",
        "past": "down",
        "ahead": "up",
        "far-ahead": "up",
        "dead": "down",
    }
    assert records["far-ahead"]["heartbeat_age_seconds"] == -3650 * 86400.0
    assert records["at"]["heartbeat_age_seconds"] == 30.0
    # One microsecond later the agent at the threshold is down (the rule compares microseconds).
    assert listed(files, T + datetime.timedelta(microseconds=1))["at"]["state"] == "down"


def test_default_down_time_and_the_records(mariadb, neutron_db, tmp_path):
    started = T - seconds(600)
    insert(
        mariadb,
        neutron_db,
        [
            agent("fresh", heartbeat_timestamp=T - seconds(75), started_at=started, id="a-1"),
            agent("stale", heartbeat_timestamp=T - seconds(76)),
        ],
    )
    records = listed(neutron_files(tmp_path, mariadb.url(neutron_db)))  # agent_down_time not written: 75
    assert records["fresh"]["state"] == "up" and records["stale"]["state"] == "down"
    assert records["fresh"] == {
        "project": "neutron",
        "cell": "",
        "binary": "neutron-openvswitch-agent",
        "host": "fresh",
        "zone": "",
        "status": "enabled",
        "state": "up",
        "disabled_reason": None,
        "id": "a-1",
        "agent_type": "Open vSwitch agent",
        "topic": "N/A",
        "admin_state_up": True,
        "heartbeat_timestamp": "2012-10-29T13:40:56Z",
        "started_at": "2012-10-29T13:32:11Z",
        "created_at": "2012-10-28T13:42:11Z",
        "heartbeat_age_seconds": 75.0,
    }


def test_admin_down_is_the_status_not_the_state(mariadb, neutron_db, tmp_path):
    insert(
        mariadb,
        neutron_db,
        [
            agent("admin-down", admin_state_up=0),
            agent("admin-down-dead", admin_state_up=0, heartbeat_timestamp=T - DAY),
        ],
    )
    records = listed(neutron_files(tmp_path, mariadb.url(neutron_db)))
    assert {h: (r["status"], r["state"], r["admin_state_up"]) for h, r in records.items()} == {
        "admin-down": ("disabled", "up", False),
        "admin-down-dead": ("disabled", "down", False),
    }


def test_zones_and_null_zones(mariadb, neutron_db, tmp_path):
    insert(
        mariadb,
        neutron_db,
        [
            dhcp("net-1", availability_zone="az1"),
            dhcp("net-2", availability_zone=None),
            dhcp("net-3", availability_zone=""),
            agent("cmp-1"),
        ],
    )
    text = scrape(Settings(sources=(NeutronConfig(mariadb.url(neutron_db)),)))
    zones = {dict(labels)["host"]: dict(labels)["zone"] for name, labels in samples(text) if name == "service_up"}
    assert zones == {"net-1": "az1", "net-2": "", "net-3": "", "cmp-1": ""}


def test_series_info_labels_and_started_at(mariadb, neutron_db):
    insert(
        mariadb,
        neutron_db,
        [
            dhcp(
                "net-1",
                id="id-1",
                availability_zone="az1",
                admin_state_up=0,
                started_at=T - seconds(90),
                heartbeat_timestamp=T - seconds(20),
            )
        ],
    )
    text = scrape(Settings(sources=(NeutronConfig(mariadb.url(neutron_db), agent_down_time=120),)))
    base = {("project", "neutron"), ("cell", ""), ("binary", "neutron-dhcp-agent"), ("host", "net-1"), ("zone", "az1")}
    got = samples(text)
    assert got[("service_up", frozenset(base))] == 1.0
    assert got[("service_disabled", frozenset(base))] == 1.0
    assert got[("service_heartbeat_age_seconds", frozenset(base))] == 20.0
    assert got[("service_started_timestamp_seconds", frozenset(base))] == to_us(T - seconds(90)) / MICROS
    assert (
        got[("service_info", frozenset(base | {("agent_type", "DHCP agent"), ("topic", "dhcp_agent"), ("id", "id-1")}))]
        == 1.0
    )
    assert ("service_reports_total", frozenset(base)) not in got  # Neutron counts no reports
    assert got[("service_down_time_seconds", frozenset({("project", "neutron")}))] == 120.0
    assert got[("service_exporter_duplicate_rows", frozenset({("project", "neutron"), ("cell", "")}))] == 0.0
    assert got[("service_exporter_source_partial", frozenset({("project", "neutron"), ("reason", "ovn")}))] == 0.0


def test_one_series_per_binary_and_host(mariadb, neutron_db):
    """(agent_type, host) is Neutron's key: two types of one binary on a host are two rows, one series."""
    insert(
        mariadb,
        neutron_db,
        [
            agent("h1", "Type A", heartbeat_timestamp=T - DAY, id="old"),
            agent("h1", "Type B", heartbeat_timestamp=T - seconds(5), id="new"),
            agent("h1", "Type C", heartbeat_timestamp=T - seconds(50), id="middle"),
            # equal heartbeats: the row created last, then (equal created_at) the higher id
            agent("h2", "Type A", created_at=T - seconds(10), id="z-created-first"),
            agent("h2", "Type B", created_at=T - seconds(5), id="a-created-last"),
            agent("h3", "Type A", id="b"),
            agent("h3", "Type B", id="c"),
            agent("h3", "Type C", id="a"),
        ],
    )
    text = scrape(Settings(sources=(NeutronConfig(mariadb.url(neutron_db)),)))
    got = samples(text)
    ids = {dict(labels)["host"]: dict(labels)["id"] for name, labels in got if name == "service_info"}
    assert ids == {"h1": "new", "h2": "a-created-last", "h3": "c"}
    assert got[("service_exporter_duplicate_rows", frozenset({("project", "neutron"), ("cell", "")}))] == 5.0


def test_ml2_ovn_with_its_databases_out_of_reach_is_partial_and_says_so(mariadb, neutron_db, tmp_path):
    """ML2/OVN with OVN's databases where ml2_conf.ini says, but nothing answers there: the agents
    table is shown, the OVN databases are down, and the answer says it is partial."""
    from ovsdb_server import free_port

    insert(mariadb, neutron_db, [agent("cmp-1")])
    nb, sb = free_port(), free_port()
    files = neutron_files(
        tmp_path,
        mariadb.url(neutron_db),
        drivers="ovn, baremetal",
        ovn=f"ovn_nb_connection = tcp:127.0.0.1:{nb}\novn_sb_connection = tcp:127.0.0.1:{sb}\n",
    )
    with freeze_time(T):
        code, out, err = run_cli(options(files) + ["list", "--format", "json"])
    assert code == 1 and [r["host"] for r in json.loads(out)] == ["cmp-1"]
    assert "neutron database (ovn_nb)" in err and "neutron database (ovn_sb)" in err
    config = config_of(files)
    assert config.ovn and config.notes == ()  # OVN is read (the [ovn] extra is installed for the tests)
    got = samples(scrape(Settings(sources=(config,))))
    assert got[("service_exporter_source_partial", frozenset({("project", "neutron"), ("reason", "ovn")}))] == 1.0
    assert got[("service_exporter_database_up", frozenset({("project", "neutron"), ("cell", "(ovn_sb)")}))] == 0.0
    # A driver whose name merely contains the letters is not OVN; without the OVN library the note says why.
    assert NeutronConfig("sqlite://", mechanism_drivers=("ovn-sync", "openvswitch")).notes == ()
    assert NeutronConfig("sqlite://", mechanism_drivers=("ovn",)).notes[0].startswith(OVN_NOTE)


def test_ml2_ovn_agents_come_from_ovn_and_the_answer_is_whole(mariadb, neutron_db, tmp_path):
    from ovsdb_server import Chassis, OvnDatabases

    insert(mariadb, neutron_db, [agent("net-1", "DHCP agent", binary="neutron-dhcp-agent")])
    dbs = OvnDatabases(tmp_path / "ovn").start()
    try:
        dbs.set_nb_cfg(7)
        stamp = to_us(T) // 1000
        dbs.set_chassis(
            [
                Chassis("ch-1", "cmp-1", nb_cfg=7, nb_cfg_timestamp=stamp),
                Chassis("ch-2", "cmp-2", nb_cfg=3, nb_cfg_timestamp=stamp - 76_000),
                # a second chassis of cmp-1's name, older: one series, the other counted
                Chassis("ch-1-old", "cmp-1", nb_cfg=3, nb_cfg_timestamp=stamp - 900_000),
            ]
        )
        files = neutron_files(
            tmp_path,
            mariadb.url(neutron_db),
            drivers="ovn",
            ovn=f"ovn_nb_connection = {dbs.nb.tcp}\novn_sb_connection = {dbs.sb.unix}\n",
        )
        with freeze_time(T):
            code, out, err = run_cli(options(files) + ["list", "--format", "json"])
            got = samples(scrape(Settings(sources=(config_of(files),))))
    finally:
        dbs.stop()
    assert code == 0 and err == "", err
    states = {(r["binary"], r["host"]): (r["state"], r["agent_type"]) for r in json.loads(out)}
    assert states == {
        ("neutron-dhcp-agent", "net-1"): ("up", "DHCP agent"),
        ("ovn-controller", "cmp-1"): ("up", "OVN Controller agent"),
        ("ovn-controller", "cmp-2"): ("down", "OVN Controller agent"),
    }
    assert got[("service_exporter_source_partial", frozenset({("project", "neutron"), ("reason", "ovn")}))] == 0.0
    assert got[("service_exporter_duplicate_rows", frozenset({("project", "neutron"), ("cell", "(ovn_sb)")}))] == 1.0
    assert ("service_exporter_duplicate_rows", frozenset({("project", "neutron"), ("cell", "(ovn_nb)")})) not in got
    up = {dict(labels)["host"]: value for (name, labels), value in got.items() if name == "service_up"}
    assert up == {"net-1": 1.0, "cmp-1": 1.0, "cmp-2": 0.0}


@pytest.mark.parametrize(
    "neutron_conf, expected",
    [
        (None, "neutron: [neutron] config_file"),  # the file is missing
        ("[DEFAULT]\nagent_down_time = 60\n", "neutron: [database] connection is not set"),
        ("[DEFAULT]\nagent_down_time = 0\n[database]\nconnection = sqlite://\n", "agent_down_time"),
        ("[DEFAULT]\nagent_down_time = 2147484\n[database]\nconnection = sqlite://\n", "agent_down_time"),
        ("[DEFAULT]\nagent_down_time = soon\n[database]\nconnection = sqlite://\n", "agent_down_time"),
        ("no section header\n", "neutron: [neutron] config_file"),
    ],
)
def test_bad_neutron_configuration_is_one_line(tmp_path, neutron_conf, expected):
    files = neutron_files(tmp_path, None)
    if neutron_conf is None:
        (tmp_path / "neutron.conf").unlink()
    else:
        (tmp_path / "neutron.conf").write_text(neutron_conf)
    code, out, err = run_cli(options(files) + ["list"])
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "neutron" in err and "neutron.conf" in err and out == ""


def test_the_largest_down_time_neutron_accepts(mariadb, neutron_db, tmp_path):
    insert(mariadb, neutron_db, [agent("old", heartbeat_timestamp=T - seconds(2147483))])
    assert listed(neutron_files(tmp_path, mariadb.url(neutron_db), down_time=2147483))["old"]["state"] == "up"


def test_neutron_database_down_is_data(tmp_path, mariadb):
    files = neutron_files(tmp_path, mariadb.url("no_such_database"))
    code, out, err = run_cli(options(files) + ["list", "--format", "json"])
    assert code == 1 and out.strip() == "[]"
    assert "neutron database" in err and "no_such_database" in err and PASSWORD not in err


def test_the_fast_writer_equals_the_reference_with_neutron_rows():
    """Nova and Neutron in one exposition, with label values that need escaping, a zero-date heartbeat
    and started_at, and the partial gauge: byte for byte as prometheus_client writes them."""
    nova = snapshot_of([row(id_=i, host=NASTY[i]) for i in range(len(NASTY))])
    agents = [
        NeutronRow(
            NASTY[i],
            NASTY[-i],
            "neutron-" + NASTY[i],
            NASTY[i],
            f"h{i}{NASTY[i]}",
            NASTY[i] or None,
            i % 2,
            NOW - 86_400 * MICROS,
            None if i == 3 else NOW - 7 * MICROS,
            None if i == 2 else NOW - i * 30 * MICROS,
        )
        for i in range(len(NASTY))
    ]
    neutron = Reading(
        NeutronConfig("sqlite://", agent_down_time=60, mechanism_drivers=("ovn",)),
        agents,
        [DatabaseHealth("neutron", "", True, 0.01, skew=0.0, duplicates=1)],
        partial={"ovn": True},
    )
    both = Snapshot(now=nova.now, readings=nova.readings + [neutron])
    assert_same(both, Settings())
    text = assert_same(both, Settings(metric_prefix="os_")).decode()
    assert text.count("# TYPE os_service_started_timestamp_seconds gauge") == 1
    assert 'os_service_exporter_source_partial{project="neutron",reason="ovn"} 1.0' in text
    assert 'agent_type="' in text and 'project="nova"' in text
