"""Random ML2/OVN clouds for the conformance suite: NB_Global.nb_cfg and a southbound chassis set whose
nb_cfg lags by 0, 1, 2 and more (or is ahead), whose timestamps sit on agent_down_time to the
millisecond on both sides, in the future or long ago, with gateways, zones, metadata agents and
neutron-ovn-agents (their own nb_cfg lagging or missing), orphaned rows and chassis without their
Chassis_Private. Seeded: a failing seed is replayed as is."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ovsdb_server import Chassis

EPOCH_MS = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC
DOWN_TIMES = (75, 75, 1, 30, 600)
CMS_PIECES = (
    "enable-chassis-as-gw",
    " enable-chassis-as-gw ",
    "enable-chassis-as-extport-host",
    "availability-zones=az1:az2",
    "availability-zones= az3 :az1",
    "availability-zones=",
    "availability-zones=nova",
    "enable-chassis-as-gw-not",
    "card-serial-number=x",
    "",
)


@dataclass
class Cloud:
    seed: int
    nb_cfg: int
    agent_down_time: int
    now_us: int
    chassis: list[Chassis]


def _lag(rng: random.Random, nb_cfg: int) -> int:
    return min(nb_cfg, rng.choice((-3, -1, 0, 0, 1, 1, 2, 2, 3, rng.randint(4, 10**6))))


def _timestamp(rng: random.Random, now_ms: int, limit_ms: int) -> int:
    kind = rng.randrange(6)
    if kind < 3:  # on the threshold: just inside, at it, just past (ms), as Neutron sees it
        return now_ms - limit_ms + rng.choice((-1, 0, 1))
    if kind == 3:
        return now_ms + rng.choice((1, 1000, rng.randint(1, 10**9)))  # the future
    if kind == 4:
        return max(0, now_ms - rng.randint(0, 2 * limit_ms))
    return rng.choice((0, now_ms - rng.randint(limit_ms, 10**10)))


def _agent_ids(rng: random.Random, nb_cfg: int) -> dict:
    ids = {}
    kind = rng.choice(("none", "metadata", "metadata", "neutron", "both", "empty"))
    if kind in ("metadata", "both"):
        ids["neutron:ovn-metadata-id"] = f"md-{rng.getrandbits(64):016x}"
    if kind in ("neutron", "both"):
        ids["neutron:ovn-neutron-agent-id"] = f"na-{rng.getrandbits(64):016x}"
    if kind == "empty":
        ids[rng.choice(("neutron:ovn-metadata-id", "neutron:ovn-neutron-agent-id"))] = ""
    for key in ("neutron:ovn-metadata-sb-cfg", "neutron:ovn-neutron-agent-sb-cfg"):
        if rng.random() < 0.85:
            ids[key] = str(nb_cfg - _lag(rng, nb_cfg))
    return ids


def cloud(seed: int, size: int) -> Cloud:
    rng = random.Random(seed)
    nb_cfg = rng.randint(10, 10**6)
    down_time = rng.choice(DOWN_TIMES)
    now_ms = EPOCH_MS + rng.randint(0, 10**9)
    extra_us = rng.choice((0, 0, rng.randint(1, 999)))  # a whole millisecond puts rows exactly at the limit
    chassis = []
    for n in range(size):
        options = ",".join(rng.sample(CMS_PIECES, rng.randint(0, 3)))
        where = rng.random()
        chassis.append(
            Chassis(
                name=f"chassis-{seed}-{n}",
                hostname=f"compute-{n % max(1, size - 3)}.example.org",
                nb_cfg=nb_cfg - _lag(rng, nb_cfg),
                nb_cfg_timestamp=_timestamp(rng, now_ms, down_time * 1000),
                private_external_ids=_agent_ids(rng, nb_cfg),
                other_config={"ovn-cms-options": options} if where < 0.9 else {},
                external_ids={"ovn-cms-options": options} if where >= 0.9 else {},
                has_chassis=rng.random() > 0.03,
                has_private=rng.random() > 0.03,
            )
        )
    return Cloud(seed, nb_cfg, down_time, now_ms * 1000 + extra_us, chassis)
