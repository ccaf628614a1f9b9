"""Neutron's ML2/OVN agents read from real OVN databases (ovsdb-server with OVN's schemas, on loopback
and on unix sockets in the test's folder) and judged by neutron 29.0.0's rule."""

from __future__ import annotations

import time

import pytest
from ovsdb_server import Chassis, OvnDatabases, make_pki
from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry

from openstack_service_exporter.config import ConfigError, Settings, read_project_files
from openstack_service_exporter.reader import ReadContext, wall_clock_us
from openstack_service_exporter.snapshot import DatabaseHealth
from openstack_service_exporter.sources import ovn, ovsdb
from openstack_service_exporter.sources.ovsdb import Remote

NOW_MS = 1_767_225_600_000  # the frozen instant of the rule's tests, ms
NOW = NOW_MS * 1000
DOWN_TIME = 75
GLOBAL_CFG = 100


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def dbs(tmp_path_factory, pki):
    databases = OvnDatabases(tmp_path_factory.mktemp("ovn"), pki).start()
    yield databases
    databases.stop()


@pytest.fixture
def ctx():
    context = ReadContext(Settings(), wall_clock_us, 4)
    yield context
    context.close()


def config(dbs, kind: str = "tcp", pki=None) -> ovn.OvnConfig:
    def remote(server):
        if kind == "ssl":
            return Remote((server.ssl,), str(pki.client_key), str(pki.client_cert), str(pki.ca_cert))
        return Remote((getattr(server, kind),))

    return ovn.OvnConfig(remote(dbs.nb), remote(dbs.sb))


def read(ctx, cfg: ovn.OvnConfig, budget: float = 5.0) -> ovn.OvnReading:
    return cfg.read(ctx, time.monotonic() + budget, budget)


def by_id(judged):
    return {j.row.id: j for j in judged}


def agent_ids(metadata: str = "", neutron: str = "", **cfgs) -> dict:
    ids = {}
    if metadata:
        ids[ovn.METADATA_ID] = metadata
    if neutron:
        ids[ovn.NEUTRON_AGENT_ID] = neutron
    ids.update({key: str(value) for key, value in cfgs.items()})
    return ids


def test_controller_rule_at_its_thresholds(dbs, ctx):
    """nb_cfg at most 1 behind (or ahead) is alive whatever its age; else strictly less than
    agent_down_time old, to the millisecond; a timestamp from the future is alive."""
    limit_ms = DOWN_TIME * 1000
    cases = {  # name: (nb_cfg, nb_cfg_timestamp ms, alive)
        "same": (GLOBAL_CFG, 0, True),
        "one-behind": (GLOBAL_CFG - 1, 0, True),
        "ahead": (GLOBAL_CFG + 5, 0, True),
        "two-behind-fresh": (GLOBAL_CFG - 2, NOW_MS - limit_ms + 1, True),
        "two-behind-at-limit": (GLOBAL_CFG - 2, NOW_MS - limit_ms, False),
        "two-behind-past-limit": (GLOBAL_CFG - 2, NOW_MS - limit_ms - 1, False),
        "far-behind-future": (0, NOW_MS + 3_600_000, True),
        "far-behind-now": (0, NOW_MS, True),
    }
    dbs.set_nb_cfg(GLOBAL_CFG)
    dbs.set_chassis([Chassis(name, f"host-{name}", nb_cfg, ts) for name, (nb_cfg, ts, _) in cases.items()])
    reading = read(ctx, config(dbs))
    assert reading.complete and reading.nb_cfg == GLOBAL_CFG
    judged = by_id(ovn.judge(reading.rows, NOW, DOWN_TIME))
    assert {name: j.up for name, j in judged.items()} == {name: alive for name, (_, _, alive) in cases.items()}
    at_limit = judged["two-behind-at-limit"]
    assert (at_limit.project, at_limit.cell, at_limit.binary, at_limit.host, at_limit.zone, at_limit.disabled) == (
        "neutron",
        "",
        "ovn-controller",
        "host-two-behind-at-limit",
        "",
        False,
    )
    assert at_limit.heartbeat == (NOW_MS - limit_ms) * 1000 and at_limit.age_us == limit_ms * 1000
    assert judged["far-behind-future"].age_us == -3_600_000_000
    row = at_limit.row
    assert (row.agent_type, row.topic, row.admin_state_up, row.chassis, row.nb_cfg, row.nb_global_nb_cfg) == (
        ovn.CONTROLLER,
        "n/a",
        True,
        "two-behind-at-limit",
        GLOBAL_CFG - 2,
        GLOBAL_CFG,
    )


def test_metadata_and_neutron_agents(dbs, ctx):
    """Their own nb_cfg from external_ids (missing: 0), the chassis' timestamp, down with their
    controller; both ids: only neutron-ovn-agent; an empty id: no agent."""
    old = NOW_MS - DOWN_TIME * 1000
    chassis = [
        Chassis("md-up", "h1", GLOBAL_CFG, old, agent_ids("m1", **{ovn.METADATA_CFG: GLOBAL_CFG - 1})),
        Chassis("md-lagging", "h2", GLOBAL_CFG, old, agent_ids("m2", **{ovn.METADATA_CFG: GLOBAL_CFG - 2})),
        Chassis("md-fresh", "h3", GLOBAL_CFG, NOW_MS, agent_ids("m3", **{ovn.METADATA_CFG: 0})),
        Chassis("md-no-cfg", "h4", GLOBAL_CFG, old, agent_ids("m4")),
        Chassis("md-dead-controller", "h5", GLOBAL_CFG - 2, old, agent_ids("m5", **{ovn.METADATA_CFG: GLOBAL_CFG})),
        Chassis(
            "both",
            "h6",
            GLOBAL_CFG,
            old,
            agent_ids("m6", "n6", **{ovn.METADATA_CFG: GLOBAL_CFG, ovn.NEUTRON_AGENT_CFG: GLOBAL_CFG - 1}),
        ),
        Chassis(
            "na-dead-controller",
            "h7",
            GLOBAL_CFG - 3,
            old,
            agent_ids(neutron="n7", **{ovn.NEUTRON_AGENT_CFG: GLOBAL_CFG}),
        ),
        Chassis("empty-ids", "h8", GLOBAL_CFG, old, agent_ids(**{ovn.METADATA_ID: "", ovn.NEUTRON_AGENT_ID: ""})),
        Chassis("bad-cfg", "h9", GLOBAL_CFG, NOW_MS, agent_ids("m9", **{ovn.METADATA_CFG: "x"})),
    ]
    dbs.set_nb_cfg(GLOBAL_CFG)
    dbs.set_chassis(chassis)
    judged = by_id(ovn.judge(read(ctx, config(dbs)).rows, NOW, DOWN_TIME))
    expected = {"m1": True, "m2": False, "m3": True, "m4": False, "m5": False, "n6": True, "n7": False, "m9": False}
    assert {i: judged[i].up for i in expected} == expected
    assert "m6" not in judged
    assert {j.row.agent_type for j in judged.values()} == {ovn.CONTROLLER, ovn.METADATA, ovn.NEUTRON_AGENT}
    assert len(judged) == len(chassis) + 8  # a controller per chassis, plus eight agents
    assert (judged["m1"].binary, judged["m1"].host, judged["n6"].binary) == (
        "neutron-ovn-metadata-agent",
        "h1",
        "neutron-ovn-agent",
    )
    assert judged["m1"].row.chassis == "md-up" and judged["m4"].row.nb_cfg == 0 and judged["m9"].row.nb_cfg is None


def test_gateway_zones_and_orphans(dbs, ctx):
    cms = ovn.CMS_OPTIONS
    chassis = [
        Chassis(
            "gw",
            "g1",
            GLOBAL_CFG,
            NOW_MS,
            other_config={cms: " enable-chassis-as-gw , availability-zones=az2: az1 :,availability-zones=x"},
        ),
        Chassis("gw-ids-only", "g2", GLOBAL_CFG, NOW_MS, external_ids={cms: "enable-chassis-as-gw"}),
        Chassis("gw-substring", "g3", GLOBAL_CFG, NOW_MS, other_config={cms: "enable-chassis-as-gw-not"}),
        Chassis("zoned", "c1", GLOBAL_CFG, NOW_MS, agent_ids("mz"), other_config={cms: "availability-zones=nova"}),
        Chassis("orphan", "o1", GLOBAL_CFG, NOW_MS, agent_ids("mo"), has_chassis=False),
        Chassis("no-private", "o2", GLOBAL_CFG, NOW_MS, has_private=False),
    ]
    dbs.set_nb_cfg(GLOBAL_CFG)
    dbs.set_chassis(chassis)
    reading = read(ctx, config(dbs))
    judged = by_id(ovn.judge(reading.rows, NOW, DOWN_TIME))
    assert set(judged) == {"gw", "gw-ids-only", "gw-substring", "zoned", "mz"}
    assert judged["gw"].row.agent_type == ovn.GATEWAY and judged["gw"].binary == "ovn-controller"
    assert judged["gw"].zone == "az1,az2"
    assert judged["gw-ids-only"].row.agent_type == judged["gw-substring"].row.agent_type == ovn.CONTROLLER
    assert judged["zoned"].zone == judged["mz"].zone == "nova"
    assert reading.orphaned == 1


def test_connection_kinds(dbs, ctx, pki):
    dbs.set_nb_cfg(7)
    dbs.set_chassis([Chassis("c", "h", 7, NOW_MS)])
    for kind in ("tcp", "unix", "ssl"):
        reading = read(ctx, config(dbs, kind, pki))
        assert [db.up for db in reading.databases] == [True, True], (kind, reading.databases)
        assert [(db.cell, db.project) for db in reading.databases] == [("(ovn_nb)", "neutron"), ("(ovn_sb)", "neutron")]
        assert all(db.duration > 0.0001 for db in reading.databases)
        assert [r.id for r in reading.rows] == ["c"] and reading.nb_cfg == 7


def test_first_answering_connection_wins(dbs, ctx, tmp_path):
    dead = f"unix:{tmp_path / 'nothing.sock'}"
    cfg = ovn.OvnConfig(Remote((dead, dbs.nb.tcp)), Remote((dead, dbs.sb.unix)))
    assert read(ctx, cfg).complete


def test_ssl_failures_are_health(dbs, ctx, pki, tmp_path):
    other = make_pki(tmp_path / "other", "other")
    wrong_ca = Remote((dbs.sb.ssl,), str(pki.client_key), str(pki.client_cert), str(other.ca_cert))
    missing = Remote((dbs.sb.ssl,), str(tmp_path / "no-key.pem"), str(pki.client_cert), str(pki.ca_cert))
    for sb in (wrong_ca, missing):
        reading = read(ctx, ovn.OvnConfig(config(dbs).nb, sb), budget=3.0)
        nb, sb_health = reading.databases
        assert nb.up and not sb_health.up and sb_health.error and not reading.rows


def read_within_budget(ctx, cfg: ovn.OvnConfig) -> tuple[DatabaseHealth, DatabaseHealth]:
    started = time.monotonic()
    reading = read(ctx, cfg, budget=1.0)
    assert time.monotonic() - started < 1.5
    assert not reading.rows and not reading.complete
    return reading.databases


def test_stopped_and_paused_servers_cost_at_most_the_budget(tmp_path, ctx):
    dbs = OvnDatabases(tmp_path).start()
    try:
        dbs.set_chassis([Chassis("c", "h", 0, NOW_MS)])
        cfg = config(dbs)
        assert read(ctx, cfg).complete
        dbs.sb.pause()
        nb, sb = read_within_budget(ctx, cfg)
        assert nb.up and not sb.up and "1s" in sb.error
        dbs.sb.resume()
        assert read(ctx, cfg).complete
        dbs.nb.stop()
        nb, sb = read_within_budget(ctx, cfg)
        assert not nb.up and "refused" in nb.error.lower() and sb.up
    finally:
        dbs.stop()


def test_configuration(tmp_path, pki):
    def conf(text: str):
        path = tmp_path / "ml2_conf.ini"
        path.write_text(text)
        return ovn.ovn_config(read_project_files("neutron", "neutron", [str(path)], None, ovn.OVN_OPTS))

    default = conf("")
    assert default.nb.connections == ("tcp:127.0.0.1:6641",) and default.sb.connections == ("tcp:127.0.0.1:6642",)
    two = conf("[ovn]\novn_nb_connection = tcp:127.0.0.1:1,unix:/run/ovn/ovnnb_db.sock\n")
    assert two.nb.connections == ("tcp:127.0.0.1:1", "unix:/run/ovn/ovnnb_db.sock")
    secure = conf(
        f"[ovn]\novn_sb_connection = ssl:127.0.0.1:6642\novn_sb_private_key = {pki.client_key}\n"
        f"ovn_sb_certificate = {pki.client_cert}\novn_sb_ca_cert = {pki.ca_cert}\n"
    )
    assert secure.sb == Remote(("ssl:127.0.0.1:6642",), str(pki.client_key), str(pki.client_cert), str(pki.ca_cert))
    with pytest.raises(ConfigError, match=r"ovn_nb_connection uses ssl: but ovn_nb_certificate, ovn_nb_ca_cert"):
        conf(f"[ovn]\novn_nb_connection = ssl:127.0.0.1:6641\novn_nb_private_key = {pki.client_key}\n")
    with pytest.raises(ConfigError, match="ovn_sb_connection"):
        conf("[ovn]\novn_sb_connection = http://127.0.0.1:6642\n")


def test_health_families_and_record(dbs, ctx):
    dbs.set_nb_cfg(42, {ovn.LIVENESS_CHECK: "2026-01-01 00:00:30.500000+00:00"})
    dbs.set_chassis([Chassis("c", "h", 42, NOW_MS), Chassis("o", "h", 42, NOW_MS, has_chassis=False)])
    reading = read(ctx, config(dbs))
    registry = CollectorRegistry()

    class Collector:
        def collect(self):
            return ovn.health_families(reading, "x_")

    registry.register(Collector())
    text = generate_latest(registry).decode()
    assert 'x_service_ovn_nb_cfg{project="neutron"} 42.0' in text
    assert 'x_service_ovn_liveness_check_timestamp_seconds{project="neutron"} 1.7672256305e+09' in text
    assert 'x_service_exporter_ovn_orphaned_chassis{project="neutron"} 1.0' in text
    assert ovn.record(reading.rows[0]) == {"chassis": "c", "nb_cfg": 42, "nb_global_nb_cfg": 42}
    assert ovn.missing_library() is None


def test_monitor_sees_each_change_at_once_and_comes_back_after_a_restart(tmp_path, ctx):
    """A reading waits for every change committed before it (rows modified, added, removed); a
    stopped server is down at once, not an old answer; started again, the monitor reconnects."""
    dbs = OvnDatabases(tmp_path).start()
    try:
        dbs.set_nb_cfg(5)
        dbs.set_chassis([Chassis("a", "h1", 5, NOW_MS), Chassis("b", "h2", 5, NOW_MS)])
        cfg = config(dbs, "unix")
        assert [(r.id, r.nb_cfg) for r in read(ctx, cfg).rows] == [("a", 5), ("b", 5)]
        for nb_cfg in (6, 7, 8):
            dbs.set_nb_cfg(nb_cfg)
            set_private(dbs, "a", nb_cfg=nb_cfg)
            reading = read(ctx, cfg)
            assert reading.nb_cfg == nb_cfg and [(r.id, r.nb_cfg) for r in reading.rows] == [("a", nb_cfg), ("b", 5)]
        dbs.sb.transact([{"op": "delete", "table": "Chassis_Private", "where": [["name", "==", "b"]]}])
        assert [r.id for r in read(ctx, cfg).rows] == ["a"]
        dbs.sb.stop()
        nb, sb = read_within_budget(ctx, cfg)
        assert nb.up and not sb.up and sb.error
        dbs.sb.start()
        set_private(dbs, "a", nb_cfg=9)
        reading = read(ctx, cfg)
        assert reading.complete and [(r.id, r.nb_cfg) for r in reading.rows] == [("a", 9)]
    finally:
        dbs.stop()


def set_private(dbs, name: str, **row) -> None:
    dbs.sb.transact([{"op": "update", "table": "Chassis_Private", "where": [["name", "==", name]], "row": row}])


def test_a_monitor_no_reading_asks_for_ends(tmp_path, ctx, monkeypatch):
    monkeypatch.setattr(ovsdb, "IDLE", 0.5)
    dbs = OvnDatabases(tmp_path).start()
    try:
        cfg = config(dbs)
        assert read(ctx, cfg).complete
        mine = [m for m in ovsdb.monitors() if m.remote in (cfg.nb, cfg.sb)]
        assert len(mine) == 2 and not any(m.closed for m in mine)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and set(mine) & set(ovsdb.monitors()):
            time.sleep(0.1)
        assert all(m.closed for m in mine) and not set(mine) & set(ovsdb.monitors())
        assert read(ctx, cfg).complete  # a new monitor
        assert len([m for m in ovsdb.monitors() if m.remote in (cfg.nb, cfg.sb)]) == 2
    finally:
        dbs.stop()


def test_a_silent_connection_is_made_anew(tmp_path, ctx, monkeypatch):
    """An echo unanswered for STALL seconds ends the monitor's connection; the new one, unanswered
    too, tells the waiting reading why; once the server answers again, so does the reading."""
    monkeypatch.setattr(ovsdb, "STALL", 1.0)
    dbs = OvnDatabases(tmp_path).start()
    try:
        cfg = config(dbs)
        assert read(ctx, cfg).complete
        dbs.sb.pause()
        started = time.monotonic()
        nb, sb = read(ctx, cfg, budget=10.0).databases
        assert nb.up and not sb.up and "no answer for 1s" in sb.error
        assert time.monotonic() - started < 8
        dbs.sb.resume()
        assert read(ctx, cfg).complete
    finally:
        dbs.stop()
