"""Randomized Neutron agent tables, reproducible from their seed (random.Random(seed)).

A cloud is the rows of `agents`, a neutron.conf `[DEFAULT] agent_down_time` and one frozen instant.
The rows sit where verdicts are easy to get wrong: heartbeats exactly `agent_down_time` old and a
second either side (the column is DATETIME, whole seconds; the instant has microseconds or not),
in the future (near and years ahead), long dead, administratively down with a fresh heartbeat, DHCP
and L3 agents with a zone, with an empty zone or a NULL one (the other agents have none), every
usual agent type, and small, default, large and maximal down times. `(agent_type, host)` stays
unique, as Neutron's key requires.
"""

from __future__ import annotations

import datetime
import json
import random
import uuid
from dataclasses import dataclass

FIRST_INSTANT = datetime.datetime(2026, 1, 1)
DEFAULT_DOWN_TIME = 75  # neutron/conf/agent/database/agents_db.py; only a guide for the generator
# The same file bounds agent_down_time to [1, (2**31 - 1) // 1000]: neutron-server refuses others.
DOWN_TIMES = (None, None, 75, 1, 2, 3, 5, 10, 30, 76, 150, 600, 86400, 2147483)
ZONES = ("nova", "nova", "az1", "az2", "zone-é", "AZ-Ops", "")


@dataclass(frozen=True)
class Kind:
    agent_type: str
    binary: str
    topic: str
    zoned: bool  # only DHCP and L3 agents report [AGENT] availability_zone


# neutron_lib/constants.py (AGENT_TYPE_*, AGENT_PROCESS_*), neutron_lib/agent/topics.py; BGP from
# neutron-dynamic-routing, the bare-metal one from networking-baremetal.
DHCP = Kind("DHCP agent", "neutron-dhcp-agent", "dhcp_agent", True)
L3 = Kind("L3 agent", "neutron-l3-agent", "l3_agent", True)
METADATA = Kind("Metadata agent", "neutron-metadata-agent", "N/A", False)
OVS = Kind("Open vSwitch agent", "neutron-openvswitch-agent", "N/A", False)
LINUXBRIDGE = Kind("Linux bridge agent", "neutron-linuxbridge-agent", "N/A", False)
SRIOV = Kind("NIC Switch agent", "neutron-sriov-nic-agent", "N/A", False)
MACVTAP = Kind("Macvtap agent", "neutron-macvtap-agent", "N/A", False)
METERING = Kind("Metering agent", "neutron-metering-agent", "metering_agent", False)
BGP = Kind("BGP dynamic routing agent", "neutron-bgp-dragent", "bgp_dragent", False)
BAREMETAL = Kind("Baremetal Node", "ironic-neutron-agent", "N/A", False)
KINDS = (DHCP, L3, METADATA, OVS, LINUXBRIDGE, SRIOV, MACVTAP, METERING, BGP, BAREMETAL)


@dataclass(frozen=True)
class Options:
    agent_down_time: int | None = None  # None: not written, Neutron's default applies

    @property
    def threshold(self) -> int:
        return DEFAULT_DOWN_TIME if self.agent_down_time is None else self.agent_down_time


@dataclass(frozen=True)
class Cloud:
    seed: int | None  # None: made by hand
    now: datetime.datetime  # the frozen instant: naive UTC, with or without microseconds
    options: Options
    agents: list[dict]  # rows of the agents table, every column

    def row(self, binary: str | None, host: str | None) -> dict | None:
        return next((r for r in self.agents if r["binary"] == binary and r["host"] == host), None)

    def describe(self) -> str:
        return f"seed={self.seed} now={self.now.isoformat()} agent_down_time={self.options.agent_down_time}"


def _instant(rng: random.Random) -> datetime.datetime:
    moment = FIRST_INSTANT + datetime.timedelta(days=rng.randint(0, 3650), seconds=rng.randint(0, 86399))
    return moment.replace(microsecond=rng.choice((0, 0, 0, 1, 500_000, 999_999, rng.randint(0, 999_999))))


def _age(rng: random.Random, t: int) -> int:
    """Whole seconds from the heartbeat to the instant's whole second; negative: in the future."""
    return rng.choice(
        (
            t,
            t,
            t,
            t + 1,
            t + 1,
            t - 1,
            t - 1,  # the threshold to the second, both sides
            0,
            rng.randint(0, t),
            -1,
            -t,
            -rng.randint(1, 10 * 365 * 86400),  # ahead, up to years: still alive for Neutron
            rng.randint(t + 2, t + 10_000_000),  # long dead
        )
    )


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def agent(rng: random.Random, now: datetime.datetime, threshold: int, kind: Kind, host: str) -> dict:
    second = now.replace(microsecond=0)
    beat = second - datetime.timedelta(seconds=_age(rng, threshold))
    created = beat - datetime.timedelta(seconds=rng.choice((0, rng.randint(1, 900 * 86400))))
    # started_at moves only when an agent restarts (start_flag): never, just now, or in between.
    started = rng.choice((created, beat, created + (beat - created) / 2)).replace(microsecond=0)
    if kind.zoned:
        zone = None if rng.random() < 0.15 else rng.choice(ZONES)  # NULL: a row older than the zone column
    else:
        zone = None
    configurations = {} if rng.random() < 0.2 else {"log_agent_heartbeats": False, "devices": rng.randint(0, 500)}
    return {
        "id": _uuid(rng),
        "agent_type": kind.agent_type,
        "binary": kind.binary,
        "topic": kind.topic,
        "host": host,
        "availability_zone": zone,
        "admin_state_up": int(rng.random() >= 0.2),
        "created_at": created,
        "started_at": started,
        "heartbeat_timestamp": beat,
        "description": rng.choice((None, "", "rack 4")),
        "configurations": json.dumps(configurations),
        "resource_versions": rng.choice((None, json.dumps({"Port": "1.10", "Network": "1.1"}))),
        "load": rng.randint(0, 50),
        "resources_synced": rng.choice((None, 0, 1)),
    }


def _hosts(rng: random.Random) -> tuple[list[str], list[str]]:
    controllers = [f"ctl-{i}" for i in range(1, rng.randint(1, 3) + 1)]
    computes = [f"cmp-{i:03d}" for i in range(1, rng.randint(2, 16) + 1)]
    if rng.random() < 0.3:
        computes.append(f"cmp-{len(computes) + 1:03d}.cloud.example.org")  # an FQDN host
    if rng.random() < 0.2:
        computes.append("Cmp-Uppercase")
    return controllers, computes


def _plan(rng: random.Random, controllers: list[str], computes: list[str]) -> list[tuple[Kind, str]]:
    """Which agent runs where: at most one of a kind per host, so (agent_type, host) stays unique."""
    plan = []
    for host in controllers:
        plan += [(kind, host) for kind in (DHCP, L3, METADATA, OVS) if rng.random() < 0.9]
        plan += [(kind, host) for kind in (METERING, BGP) if rng.random() < 0.2]
    dvr = rng.random() < 0.4
    for host in computes:
        plan.append((LINUXBRIDGE if rng.random() < 0.1 else OVS, host))
        plan += [(kind, host) for kind in (SRIOV, MACVTAP) if rng.random() < 0.1]
        if dvr:
            plan += [(kind, host) for kind in (L3, METADATA) if rng.random() < 0.9]
        if rng.random() < 0.05:
            plan.append((DHCP, host))
    if rng.random() < 0.3:
        plan += [(BAREMETAL, _uuid(rng)) for _ in range(rng.randint(1, 3))]
    return plan


def generate(seed: int) -> Cloud:
    rng = random.Random(seed)
    options = Options(rng.choice(DOWN_TIMES) if rng.random() < 0.7 else rng.randint(1, 300))
    now = _instant(rng)
    controllers, computes = _hosts(rng)
    plan = [] if rng.random() < 0.02 else _plan(rng, controllers, computes)  # now and then an empty table
    agents = [agent(rng, now, options.threshold, kind, host) for kind, host in plan]
    rng.shuffle(agents)
    return Cloud(seed, now, options, agents)
