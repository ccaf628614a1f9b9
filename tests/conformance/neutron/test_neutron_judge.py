"""Neutron's own answer, alone, on a hand-made agents table: the judge reads the cloud's files as
neutron-api does, freezes the clock where asked, and Neutron's rule shows at its edges."""

from __future__ import annotations

import datetime
import random

import neutron_random
import pytest
from neutron_random import Cloud, Options

pytestmark = pytest.mark.conformance

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0)
DOWN = 30  # not Neutron's default: proves neutron.conf was read


def hand_made(now: datetime.datetime) -> Cloud:
    rng = random.Random(0)
    second = datetime.timedelta(seconds=1)
    rows = []
    for host, age, kind, admin in (
        ("at-threshold", DOWN * second, neutron_random.OVS, 1),
        ("past-threshold", (DOWN + 1) * second, neutron_random.OVS, 1),
        ("far-future", -3650 * datetime.timedelta(days=1), neutron_random.L3, 1),
        ("admin-down", 0 * second, neutron_random.DHCP, 0),
    ):
        row = neutron_random.agent(rng, now, DOWN, kind, host)
        row.update(heartbeat_timestamp=now - age, admin_state_up=admin, availability_zone=None)
        rows.append(row)
    return Cloud(None, now, Options(DOWN), rows)


def alive(answer: dict) -> dict[str, bool]:
    return {a["host"]: a["alive"] for a in answer["agents"]}


def test_neutron_judges_a_hand_made_table(neutron_deployment, neutron_judge, tmp_path):
    cloud = hand_made(NOW)
    neutron_deployment.load(cloud)
    neutron_deployment.write_conf(tmp_path, cloud.options)
    answer = neutron_judge.ask(tmp_path, NOW)
    assert answer["agent_down_time"] == DOWN
    assert answer["utcnow"] == NOW.isoformat()  # Neutron's clock was frozen at the instant asked
    assert answer["mechanism_drivers"] == ["openvswitch"]  # ml2_conf.ini was read too
    assert alive(answer) == {"at-threshold": True, "past-threshold": False, "far-future": True, "admin-down": True}
    admin = {a["host"]: a["admin_state_up"] for a in answer["agents"]}
    assert admin == {"at-threshold": True, "past-threshold": True, "far-future": True, "admin-down": False}
    assert all(a["availability_zone"] is None for a in answer["agents"])
    # One microsecond later the row exactly at the threshold is down; nothing else changes.
    later = neutron_judge.ask(tmp_path, NOW + datetime.timedelta(microseconds=1))
    assert alive(later) == {**alive(answer), "at-threshold": False}


def test_the_default_down_time_applies_when_not_written(neutron_deployment, neutron_judge, tmp_path):
    cloud = hand_made(NOW)
    neutron_deployment.load(cloud)
    neutron_deployment.write_conf(tmp_path, Options(None))
    answer = neutron_judge.ask(tmp_path, NOW)
    assert answer["agent_down_time"] == 75
    assert alive(answer)["past-threshold"] is True  # 31 s old, well within 75


def test_neutron_reads_ovn_from_ml2_conf(neutron_deployment, neutron_judge, ml2_ovn_conf, tmp_path):
    """The ML2/OVN case: neutron-api reads [ml2] mechanism_drivers (a ListOpt) from
    plugins/ml2/ml2_conf.ini of its config dir; the fixture's file names ovn."""
    neutron_deployment.load(hand_made(NOW))
    neutron_deployment.write_conf(tmp_path, Options(DOWN))
    (tmp_path / "plugins" / "ml2" / "ml2_conf.ini").write_text(ml2_ovn_conf.read_text())
    answer = neutron_judge.ask(tmp_path, NOW)
    assert "ovn" in answer["mechanism_drivers"]
    # Without OVN's databases Neutron's agent list here is the table's rows only: the exporter's is partial.
    assert len(answer["agents"]) == 4
