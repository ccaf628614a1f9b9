"""Randomized Cinder clouds for the conformance comparison, reproducible from their seed
(random.Random(seed)).

A cloud is the rows of Cinder's `services` table, a cinder.conf [DEFAULT] (service_down_time,
report_interval) and one frozen instant. The rows sit where verdicts go wrong: heartbeats exactly
the down time old or ahead, to the second, on both sides (the instant may have microseconds,
MariaDB's DATETIME keeps whole seconds), in the future within and beyond the down time, a NULL
updated_at (Cinder falls back to created_at) beside a fresh or stale created_at, a fresh modified_at
(shown by the API as updated_at, never the heartbeat), disabled with and without a reason,
soft-deleted twins (deleted = 1, and deleted NULL), several live rows of one (binary, host) (Cinder
has no unique key: HA volume services sharing a backend name), every binary, cinder-volume hosts as
hostname@backend, clusters, frozen backends, replication states, non-default zones.

Cinder's API fails on a row with both heartbeats NULL (a TypeError in ServiceController.index, which
cinder/api/openstack/wsgi.py turns into 400 for the whole listing): such rows are never made here.
A NULL disabled reads as enabled, a NULL frozen as false (the object field's default).
"""

from __future__ import annotations

import dataclasses
import datetime
import random
import uuid
from dataclasses import dataclass

FIRST_INSTANT = datetime.datetime(2026, 1, 1)
SEEDS = range(20260301, 20260301 + 80)  # the clouds of the comparison: 2,512 live rows
BINARIES = ("cinder-scheduler", "cinder-volume", "cinder-backup")
ZONES = ("nova", "nova", "nova", "cinder", "az1", "az2", "zone-é", "AZ-Ops", "")
BACKENDS = ("lvm", "ceph", "ceph-ssd", "nfs-é", "pure")
REASONS = ("maintenance", "réparation — ticket 42", "", "disk array firmware upgrade")
REPLICATION = (
    "not-capable",
    "not-capable",
    "not-capable",
    "enabled",
    "disabled",
    "failed-over",
    "error",
    "failing-over",
    None,
)
# What real 29.0.0 services write (cinder/service.py, _create_service_ref): each manager's
# RPC_API_VERSION (cinder/{scheduler,volume,backup}/rpcapi.py) and objects/base.py
# OBJ_VERSIONS.get_current(). cinder-api refuses to start on a live row without them (ServiceTooOld).
RPC_VERSIONS = {"cinder-scheduler": "3.12", "cinder-volume": "3.20", "cinder-backup": "2.4"}
OBJECT_VERSION = "1.39"
# [DEFAULT] service_down_time / report_interval (None: not written, Cinder's default 60 / 10). The
# API never applies the volume services' int(2.5 x report_interval) override
# (cinder/service.py, basic_config_check), so pairs with the down time at or below the interval
# are here on purpose: 7/10, 10/10, 5/7, 1/1, 3/None, 0/None (only a zero age is up), -5/None
# (nothing is up).
TIMING_CASES = (
    (None, None),
    (7, 10),
    (10, 10),
    (5, 7),
    (25, 10),
    (30, 12),
    (15, None),
    (None, 60),
    (None, 61),
    (120, 60),
    (1, 1),
    (3, None),
    (0, None),
    (-5, None),
    (11, 10),
    (90, 30),
)


@dataclass(frozen=True)
class Options:
    """cinder.conf [DEFAULT] options of one cloud; None is not written, so Cinder's default applies."""

    service_down_time: int | None = None
    report_interval: int | None = None

    def written(self) -> dict[str, object]:
        return {name: value for name, value in dataclasses.asdict(self).items() if value is not None}

    @property
    def down_time(self) -> int:
        """Where to put heartbeats; only a guide for the generator, the verdicts come from Cinder."""
        return 60 if self.service_down_time is None else self.service_down_time


@dataclass(frozen=True)
class Cloud:
    seed: int | None  # None: made by hand
    now: datetime.datetime  # the frozen instant: naive UTC, maybe with microseconds
    options: Options
    services: list[dict]  # rows of the services table, every column given, ids too

    def row(self, service_id: int) -> dict:
        return next(r for r in self.services if r["id"] == service_id)

    def listed(self) -> list[dict]:
        """The rows Cinder lists: deleted false (a NULL deleted is not listed either)."""
        return [r for r in self.services if r["deleted"] == 0]

    def describe(self) -> str:
        return f"seed={self.seed} now={self.now.isoformat()} options={self.options.written()}"


def _options(rng: random.Random) -> Options:
    if rng.random() < 0.6:
        return Options(*rng.choice(TIMING_CASES))
    return Options(rng.choice((None, rng.randint(1, 180))), rng.choice((None, rng.randint(1, 60))))


def _instant(rng: random.Random) -> datetime.datetime:
    moment = FIRST_INSTANT + datetime.timedelta(days=rng.randint(0, 3650), seconds=rng.randint(0, 86399))
    return moment.replace(microsecond=rng.choice((0, 0, 0, 1, 500_000, 999_999, rng.randint(0, 999_999))))


def _age(rng: random.Random, down: int) -> int:
    """Whole seconds from the heartbeat to the instant's whole second; negative: in the future."""
    t = down
    return rng.choice(
        (
            t,
            t,
            t + 1,
            t - 1,
            -t,
            -t,
            -t - 1,
            -t + 1,  # the boundary, both sides, past and future
            0,
            rng.randint(0, max(t, 1)),
            -rng.randint(t + 2, t + 100_000),  # far ahead: down for the API
            rng.randint(t + 2, t + 10_000_000),  # long dead
        )
    )


def _heartbeat_columns(rng: random.Random, now: datetime.datetime, down: int) -> dict:
    second = now.replace(microsecond=0)
    beat = second - datetime.timedelta(seconds=_age(rng, down))
    old = beat - datetime.timedelta(days=rng.randint(1, 900))
    if rng.random() < 0.15:
        # updated_at NULL (a row written before it had a default): Cinder falls back to created_at.
        updated_at, created_at = None, beat
    else:
        # created_at is ignored while updated_at is set; sometimes it looks fresh to catch a wrong pick.
        updated_at, created_at = beat, rng.choice((beat, old, old, second))
    # modified_at: the last enable/disable, shown by the API as updated_at when nearer than the
    # heartbeat; sometimes fresh, to catch an age taken from it.
    modified_at = rng.choice((None, None, None, second, old, second - datetime.timedelta(seconds=rng.randint(1, 99))))
    return {"created_at": created_at, "updated_at": updated_at, "modified_at": modified_at}


def _row(
    rng: random.Random, now: datetime.datetime, down: int, host: str, binary: str, zone: str, cluster: str | None = None
) -> dict:
    disabled = rng.random() < 0.25
    if disabled:
        reason = rng.choice((None, *REASONS))
    else:
        reason = "re-enabled, reason left" if rng.random() < 0.05 else None
    volume = binary == "cinder-volume"
    row = {
        "id": 0,
        "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "cluster_name": cluster,
        "host": host,
        "binary": binary,
        "topic": binary,
        "report_count": rng.randint(0, 10**6),
        # A NULL disabled is listed as enabled (an object field that may be None).
        "disabled": None if rng.random() < 0.02 else int(disabled),
        "availability_zone": zone,
        "disabled_reason": reason,
        "rpc_current_version": RPC_VERSIONS[binary],
        "object_current_version": OBJECT_VERSION,
        "replication_status": rng.choice(REPLICATION) if volume else "not-capable",
        "active_backend_id": rng.choice((None, None, None, "secondary", "replica-2")) if volume else None,
        "frozen": None if rng.random() < 0.03 else int(volume and rng.random() < 0.1),
        "deleted": 0,
        "deleted_at": None,
    }
    row.update(_heartbeat_columns(rng, now, down))
    return row


def _twin(rng: random.Random, row: dict, now: datetime.datetime, down: int) -> dict:
    """A soft-deleted row of the same service (Cinder sets deleted = 1; a NULL deleted is hidden
    too), judged differently."""
    twin = _row(rng, now, down, row["host"], row["binary"], row["availability_zone"], row["cluster_name"])
    twin["deleted"] = None if rng.random() < 0.15 else 1
    twin["deleted_at"] = now.replace(microsecond=0) - datetime.timedelta(hours=rng.randint(1, 5000))
    return twin


def _duplicate(rng: random.Random, row: dict, now: datetime.datetime, down: int) -> dict:
    """Another live row of the same binary and host; a third of them with the very same heartbeat,
    so that only the id breaks the tie."""
    dup = _row(
        rng, now, down, row["host"], row["binary"], rng.choice((row["availability_zone"], *ZONES)), row["cluster_name"]
    )
    if rng.random() < 0.33:
        dup["updated_at"], dup["created_at"] = row["updated_at"], row["created_at"]
    return dup


def _services(rng: random.Random, now: datetime.datetime, down: int) -> list[dict]:
    zone = rng.choice(ZONES)  # the cloud's storage_availability_zone; some backends have their own
    clustered = {b: f"cluster{rng.randint(1, 3)}@{b}" for b in BACKENDS if rng.random() < 0.3}
    rows = []
    for n in range(1, rng.randint(1, 3) + 1):
        ctl = f"ctl-{n}"
        for binary in ("cinder-scheduler", "cinder-backup"):
            if rng.random() < 0.85:
                rows.append(_row(rng, now, down, ctl, binary, zone))
        if rng.random() < 0.3:
            rows.append(_row(rng, now, down, f"{ctl}@lvm", "cinder-volume", zone))
    for n in range(1, rng.randint(5, 18) + 1):
        host = f"stor-{n:02d}"
        for backend in rng.sample(BACKENDS, rng.randint(1, 3)):
            backend_zone = zone if rng.random() < 0.7 else rng.choice(ZONES)
            rows.append(
                _row(
                    rng,
                    now,
                    down,
                    f"{host}@{backend}",
                    "cinder-volume",
                    backend_zone,
                    clustered.get(backend) if rng.random() < 0.85 else None,
                )
            )
        if rng.random() < 0.2:
            rows.append(_row(rng, now, down, host, "cinder-backup", zone))
    live = list(rows)
    for row in rng.sample(live, rng.randint(0, 3)) if rng.random() < 0.5 else ():
        rows.extend(_duplicate(rng, row, now, down) for _ in range(rng.choice((1, 1, 2))))
    rows.extend(_twin(rng, row, now, down) for row in live if rng.random() < 0.15)
    rng.shuffle(rows)
    next_id = rng.randint(1, 5000)
    for row in rows:
        row["id"] = next_id
        next_id += rng.choice((1, 1, 2, 7))  # gaps, as deletions leave them
    return rows


def generate(seed: int) -> Cloud:
    rng = random.Random(seed)
    options = _options(rng)
    now = _instant(rng)
    return Cloud(seed, now, options, _services(rng, now, options.down_time))
