"""Neutron 29.0.0's own OVN agent code and the exporter read the same OVN databases (real
ovsdb-servers) and judge them at the same frozen instant: every agent, field by field.

Neutron's side: ovn_judge.py in the oracle venv (its own ovsdbapp connections, AgentCache.populate,
NeutronAgent.as_dict under freezegun). The exporter's side: openstack_service_exporter.sources.ovn read + judge."""

from __future__ import annotations

import collections
import datetime
import json
import pathlib
import subprocess
import time

import pytest
from ovn_random import cloud
from ovsdb_server import OvnDatabases

from openstack_service_exporter.config import Settings
from openstack_service_exporter.reader import ReadContext, wall_clock_us
from openstack_service_exporter.sources import ovn
from openstack_service_exporter.sources.ovsdb import Remote

pytestmark = pytest.mark.conformance

JUDGE = pathlib.Path(__file__).with_name("ovn_judge.py")
CLOUDS = 12
SIZE = 80  # chassis per cloud: about 1,600 agents in all
MIN_AGENTS = 1000


def instant(us: int) -> datetime.datetime:
    return datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(microseconds=us)


def neutron_view(agent: dict) -> tuple:
    zones = frozenset(z for z in agent["availability_zone"].split(", ") if z)
    return (
        agent["agent_type"],
        agent["binary"],
        agent["host"],
        zones,
        agent["alive"],
        agent["topic"],
        agent["admin_state_up"],
        agent["heartbeat_timestamp"],
        agent["configurations"]["chassis_name"],
    )


def exporter_view(j) -> tuple:
    zones = frozenset(z for z in j.zone.split(",") if z)
    second = instant(j.heartbeat).replace(microsecond=0, tzinfo=None)
    return (j.row.agent_type, j.binary, j.host, zones, j.up, j.row.topic, not j.disabled, str(second), j.row.chassis)


def edges(c, rows, judged) -> collections.Counter:
    """Which of the generator's edge cases this cloud holds, among the agents compared."""
    seen = collections.Counter()
    limit = c.agent_down_time * 1_000_000
    up = {j.row.id: j.up for j in judged}
    for row in rows:
        lag = row.nb_global_nb_cfg - row.nb_cfg if row.nb_cfg is not None else None
        seen[f"lag {lag if lag in (-1, 0, 1, 2) else 'other'}"] += 1
        if lag is not None and lag > 1:
            age = c.now_us - row.heartbeat_timestamp
            seen[
                "age == limit"
                if age == limit
                else "age just inside"
                if 0 < limit - age <= 1000
                else "age just past"
                if 0 < age - limit <= 1000
                else "future"
                if age < 0
                else "age other"
            ] += 1
        seen[row.agent_type] += 1
        seen["zoned"] += bool(row.availability_zone)
        if row.binary != "ovn-controller" and not up[row.chassis]:
            seen["agent whose controller is down"] += 1
    return seen


def test_neutron_and_exporter_agree_on_random_clouds(tmp_path, oracle_python, tally):
    clouds = [cloud(seed, SIZE) for seed in range(CLOUDS)]
    servers = [OvnDatabases(tmp_path / f"cloud{c.seed}") for c in clouds]
    ctx = ReadContext(Settings(), wall_clock_us, 4)
    try:
        for c, dbs in zip(clouds, servers):
            dbs.start()
            dbs.set_nb_cfg(c.nb_cfg)
            dbs.set_chassis(c.chassis)
        request = [
            {
                "nb": dbs.nb.tcp,
                "sb": dbs.sb.tcp,
                "agent_down_time": c.agent_down_time,
                "now": instant(c.now_us).isoformat(),
            }
            for c, dbs in zip(clouds, servers)
        ]
        done = subprocess.run(
            [str(oracle_python), str(JUDGE)], input=json.dumps(request), capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, done.stderr[-3000:]
        answers = json.loads(done.stdout)

        compared, seen, differences = 0, collections.Counter(), []
        for c, dbs, answer in zip(clouds, servers, answers):
            config = ovn.OvnConfig(Remote((dbs.nb.unix,)), Remote((dbs.sb.unix,)))
            reading = config.read(ctx, time.monotonic() + 30, 30)
            assert reading.complete, reading.databases
            judged = ovn.judge(reading.rows, c.now_us, c.agent_down_time)
            mine = {j.row.id: exporter_view(j) for j in judged}
            theirs = {a["id"]: neutron_view(a) for a in answer}
            for agent_id in sorted(set(mine) | set(theirs)):
                if mine.get(agent_id) != theirs.get(agent_id):
                    differences.append((c.seed, agent_id, theirs.get(agent_id), mine.get(agent_id)))
            compared += len(theirs)
            seen += edges(c, reading.rows, judged)
    finally:
        ctx.close()
        for dbs in servers:
            dbs.stop()
    print(f"\nOVN conformance: {compared} agents in {CLOUDS} clouds; edge cases: {dict(sorted(seen.items()))}")
    tally.update(clouds=CLOUDS, agents=compared, disagreeing=len({seed for seed, *_ in differences}))
    assert differences == [], differences[:20]
    assert compared >= MIN_AGENTS
    for case in (
        "lag 0",
        "lag 1",
        "lag 2",
        "lag -1",
        "age == limit",
        "age just inside",
        "age just past",
        "future",
        ovn.GATEWAY,
        ovn.METADATA,
        ovn.NEUTRON_AGENT,
        "zoned",
        "agent whose controller is down",
    ):
        assert seen[case] > 0, case
