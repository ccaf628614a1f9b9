"""Randomized clouds for the conformance comparison, reproducible from their seed (random.Random(seed)).

A cloud is service rows per cell, AZ aggregates, a nova.conf [DEFAULT] and one frozen instant. The
rows are built to sit where verdicts are easy to get wrong: heartbeats at the threshold to the second
and below it (the instant has microseconds, MariaDB keeps whole seconds), in the future, missing
(created_at fallback), overridden by forced_down, next to misleading updated_at and created_at
values, soft-deleted twins, API binaries, zones from zero, one or two aggregates.

Nova crashes on some rows (both heartbeats NULL, NULL disabled or forced_down): they are never made
here; test_conformance_crashes.py states what the exporter does with them.
"""

from __future__ import annotations

import dataclasses
import datetime
import random
import uuid
from dataclasses import dataclass

CELLS = ("cell0", "cell1", "cell2")
FIRST_INSTANT = datetime.datetime(2026, 1, 1)
ZONES = ("az1", "az2", "az3", "zone-é", "AZ-Ops", "")  # '' is no valid name for Nova's API, but a row can hold it
REASONS = (None, "maintenance", "réparation — ticket 42", "AUTO: Connection to libvirt lost: 1", "")
# [DEFAULT] service_down_time / report_interval pairs worth having (None: not written, Nova's default).
# A down time not above the interval is replaced by int(2.5 x interval): 7/10 -> 25, 5/7 -> 17,
# 10/10 -> 25, None/60 -> 150, 0/0 -> 0 (only a zero age is up), -5/-4 -> -10 (nothing is up).
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
    (None, 25),
    (0, 0),
    (1, 1),
    (-5, -4),
    (11, 10),
    (3, 1),
)


@dataclass(frozen=True)
class Options:
    """nova.conf [DEFAULT] options of one cloud; None is not written, so Nova's default applies."""

    service_down_time: int | None = None
    report_interval: int | None = None
    default_availability_zone: str | None = None
    internal_service_availability_zone: str | None = None

    def written(self) -> dict[str, object]:
        return {name: value for name, value in dataclasses.asdict(self).items() if value is not None}

    @property
    def threshold(self) -> int:
        """Where to put heartbeats; only a guide for the generator, the verdicts come from Nova."""
        down = 60 if self.service_down_time is None else self.service_down_time
        interval = 10 if self.report_interval is None else self.report_interval
        return int(interval * 2.5) if down <= interval else down


@dataclass(frozen=True)
class Aggregate:
    name: str
    hosts: tuple[str, ...]
    zone: str | None  # None: an aggregate without availability_zone metadata


@dataclass(frozen=True)
class Cloud:
    seed: int | None  # None: made by hand
    now: datetime.datetime  # the frozen instant: naive UTC, with microseconds
    options: Options
    services: dict[str, list[dict]]  # cell name -> rows of its services table (every column, id too)
    aggregates: list[Aggregate]

    def row(self, cell: str, binary: str | None, host: str | None) -> dict | None:
        """The listed row of a (cell, binary, host), to show beside a disagreement."""
        return next(
            (
                r
                for r in self.services.get(cell, [])
                if r["deleted"] == 0 and r["binary"] == binary and r["host"] == host
            ),
            None,
        )

    def describe(self) -> str:
        return f"seed={self.seed} now={self.now.isoformat()} options={self.options.written()}"


def _options(rng: random.Random) -> Options:
    if rng.random() < 0.6:
        down, interval = rng.choice(TIMING_CASES)
    else:
        down = rng.choice((None, rng.randint(1, 180)))
        interval = rng.choice((None, rng.randint(1, 40)))
    return Options(
        down,
        interval,
        rng.choice((None, None, "nova", "az-default", "az1")),
        rng.choice((None, None, "internal", "control-plane", "nova")),
    )


def _instant(rng: random.Random) -> datetime.datetime:
    moment = FIRST_INSTANT + datetime.timedelta(days=rng.randint(0, 3650), seconds=rng.randint(0, 86399))
    return moment.replace(microsecond=rng.choice((0, 0, 1, 500_000, 999_999, rng.randint(0, 999_999))))


def _age(rng: random.Random, threshold: int) -> int:
    """Whole seconds from the heartbeat to the instant's whole second; negative: in the future."""
    t = threshold
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
            -rng.randint(t + 2, t + 100_000),  # far ahead: down
            rng.randint(t + 2, t + 10_000_000),  # long dead
        )
    )


def _heartbeat_columns(rng: random.Random, now: datetime.datetime, threshold: int) -> dict:
    second = now.replace(microsecond=0)
    beat = second - datetime.timedelta(seconds=_age(rng, threshold))
    if rng.random() < 0.2:
        # Never reported: last_seen_up NULL, Nova falls back to created_at.
        last_seen_up, created_at = None, beat
    else:
        # created_at is ignored while last_seen_up is set; sometimes it looks fresh to catch a wrong pick.
        last_seen_up = beat
        created_at = rng.choice((beat, second, beat - datetime.timedelta(days=rng.randint(1, 900))))
    # updated_at is never the heartbeat (enable/disable/force-down touch it too): sometimes fresh, to catch it.
    updated_at = rng.choice((None, last_seen_up or created_at, second, second - datetime.timedelta(days=1)))
    return {"created_at": created_at, "updated_at": updated_at, "last_seen_up": last_seen_up}


def _row(
    rng: random.Random, cloud_now: datetime.datetime, threshold: int, host: str | None, binary: str, topic: str | None
) -> dict:
    disabled = rng.random() < 0.25
    reason = rng.choice(REASONS) if disabled else ("re-enabled, reason left" if rng.random() < 0.05 else None)
    row = {
        "id": 0,
        "host": host,
        "binary": binary,
        "topic": topic,
        "report_count": rng.randint(0, 10**6),
        "disabled": int(disabled),
        "deleted": 0,
        "deleted_at": None,
        "disabled_reason": reason,
        "forced_down": int(rng.random() < 0.1),
        "version": rng.choice((66, 66, 61, 30)),
        "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    }
    row.update(_heartbeat_columns(rng, cloud_now, threshold))
    return row


def _twin(rng: random.Random, row: dict, cloud_now: datetime.datetime, threshold: int) -> dict:
    """A soft-deleted copy (Nova sets deleted = id; a NULL deleted is hidden too), judged differently."""
    twin = _row(rng, cloud_now, threshold, row["host"], row["binary"], row["topic"])
    twin["deleted"] = None if rng.random() < 0.1 else "id"
    twin["deleted_at"] = cloud_now.replace(microsecond=0) - datetime.timedelta(hours=rng.randint(1, 5000))
    return twin


def _services(
    rng: random.Random, now: datetime.datetime, threshold: int, controllers: list[str], computes: dict[str, list[str]]
) -> dict[str, list[dict]]:
    def make(host, binary, topic="from binary"):
        if topic == "from binary":
            topic = binary[len("nova-") :]
        return _row(rng, now, threshold, host, binary, topic)

    cells: dict[str, list[dict]] = {cell: [] for cell in CELLS}
    for ctl in controllers:
        # Super-conductor and scheduler in cell0; a conductor per cell on the same controller host.
        for binary in ("nova-scheduler", "nova-conductor"):
            if rng.random() < 0.8:
                cells["cell0"].append(make(ctl, binary))
        for cell in ("cell1", "cell2"):
            if rng.random() < 0.9:
                cells[cell].append(make(ctl, "nova-conductor"))
        # API services register a row but never heartbeat: Nova does not list them.
        for binary in ("nova-osapi_compute", "nova-metadata"):
            if rng.random() < 0.7:
                cells[rng.choice(CELLS)].append(make(ctl, binary, rng.choice((None, binary[len("nova-") :]))))
    if rng.random() < 0.2:
        cells["cell1"].append(make(controllers[0], "nova-consoleauth"))
    if rng.random() < 0.1:
        # A non-compute binary with topic 'compute': the zone follows the topic, not the binary.
        cells["cell0"].append(make(controllers[-1], "nova-cert", "compute"))
    for cell, hosts in computes.items():
        for host in hosts:
            # A compute with a NULL topic is in the internal zone for Nova.
            cells[cell].append(make(host, "nova-compute", None if rng.random() < 0.05 else "compute"))
    if rng.random() < 0.1:
        cells["cell1"].append(make(None, "nova-compute"))  # a NULL host
    for rows in cells.values():
        rows.extend([_twin(rng, row, now, threshold) for row in rows if rng.random() < 0.15])
        rng.shuffle(rows)
        for number, row in enumerate(rows, start=1):
            row["id"] = number
            if row["deleted"] == "id":
                row["deleted"] = number
    return cells


def _aggregates(rng: random.Random, controllers: list[str], compute_hosts: list[str]) -> list[Aggregate]:
    aggregates = []
    for index in range(rng.randint(0, 4)):
        hosts = rng.sample(compute_hosts, rng.randint(0, len(compute_hosts)))
        if index == 0 and rng.random() < 0.5:
            hosts.append(controllers[0])  # a controller in an AZ aggregate: its services stay internal
        if rng.random() < 0.2:
            # Nova compares hosts exactly: an upper-cased name does not put the compute in the zone
            # (MariaDB's case-insensitive collation must not leak into the answer).
            outside = [h for h in compute_hosts if h not in hosts]
            if outside:
                hosts.append(rng.choice(outside).upper())
        if rng.random() < 0.3:
            hosts.append("cmp-retired")  # a host without any service row
        aggregates.append(Aggregate(f"agg-{index}", tuple(hosts), rng.choice(ZONES)))
    if rng.random() < 0.7:
        aggregates.append(
            Aggregate("ssd-only", tuple(rng.sample(compute_hosts, rng.randint(0, len(compute_hosts)))), None)
        )
    return aggregates


def generate(seed: int) -> Cloud:
    rng = random.Random(seed)
    options = _options(rng)
    now = _instant(rng)
    controllers = [f"ctl-{i}" for i in range(1, rng.randint(1, 3) + 1)]
    computes = {
        cell: [f"cmp{cell[-1]}-{i:02d}" for i in range(1, rng.randint(2, 10) + 1)] for cell in ("cell1", "cell2")
    }
    if rng.random() < 0.2:
        computes["cell2"].append(computes["cell1"][0])  # one host name in two cells
    compute_hosts = sorted({h for hosts in computes.values() for h in hosts})
    return Cloud(
        seed,
        now,
        options,
        _services(rng, now, options.threshold, controllers, computes),
        _aggregates(rng, controllers, compute_hosts),
    )
