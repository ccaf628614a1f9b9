"""Randomized Ironic conductor tables, reproducible from their seed (random.Random(seed)).

A cloud is the rows of `conductors`, an ironic.conf [conductor] heartbeat_timeout and one frozen
instant. The rows sit where verdicts are easy to get wrong: heartbeats exactly `heartbeat_timeout`
old and a second either side (`updated_at` is a DATETIME of whole seconds; the instant has
microseconds in about half the clouds), in the future (within the timeout, exactly the timeout
ahead, year 9999), at the epoch, offline conductors with fresh heartbeats, conductor groups empty and
named, driver lists NULL, JSON null, empty, one and several, NULL created_at, older object versions;
timeouts left at the default, small, large (up to the option's max), zero and negative.

Ironic's own API fails on some rows (NULL version, updated_at or online; see
test_ironic_crashes.py): they are never made here.
"""

from __future__ import annotations

import datetime
import json
import random
from dataclasses import dataclass

FIRST_INSTANT = datetime.datetime(2026, 1, 1)
DEFAULT_TIMEOUT = 60  # ironic/conf/conductor.py, heartbeat_timeout
MAX_TIMEOUT = 315576000  # its max: ten years
# [conductor] heartbeat_timeout of a cloud; None is not written. No min is declared, so 0 and
# negative values load: then only a heartbeat at least that far ahead counts as recent.
TIMEOUTS = (None, None, None, 60, 1, 2, 5, 10, 15, 25, 90, 120, 300, 3600, 86400, 30 * 86400, MAX_TIMEOUT, 0, -5)
FAR_FUTURE = datetime.datetime(9999, 12, 31, 23, 59, 59)
EPOCH = datetime.datetime(1970, 1, 1)
HOSTS = (
    "ironic-conductor-{}",
    "bm-ctl{}.dc1.example.org",
    "cond{}",
    "CTL-Bare-{}",
    "conducteur-é-{}",
    "bm{}.example.org:6385",
)
GROUPS = ("", "", "", "rack-1", "rack-2", "Group_A", "dc2.row7", "g" * 255)
# As stored: Ironic writes json.dumps(list); NULL and the JSON text null both come back as [].
DRIVERS = (
    None,
    "null",
    "[]",
    '["ipmi"]',
    '["redfish"]',
    '["fake-hardware"]',
    '["ipmi", "redfish"]',
    '["redfish", "ipmi"]',
    '["ipmi","redfish","idrac","ilo"]',
    '["idrac", "ilo5", "irmc"]',
)
VERSIONS = ("1.6",) * 6 + ("1.5", "1.3", "1.0")  # older versions load unchanged (no _convert_to_version)


@dataclass(frozen=True)
class Cloud:
    seed: int | None  # None: made by hand
    now: datetime.datetime  # the frozen instant: naive UTC
    heartbeat_timeout: int | None  # None: not written, Ironic's default
    rows: list[dict]  # rows of `conductors`, every column

    @property
    def timeout(self) -> int:
        return DEFAULT_TIMEOUT if self.heartbeat_timeout is None else self.heartbeat_timeout

    def row(self, hostname: str) -> dict | None:
        return next((r for r in self.rows if r["hostname"] == hostname), None)

    def describe(self) -> str:
        return f"seed={self.seed} now={self.now.isoformat()} heartbeat_timeout={self.heartbeat_timeout}"


def _instant(rng: random.Random) -> datetime.datetime:
    moment = FIRST_INSTANT + datetime.timedelta(days=rng.randint(0, 3650), seconds=rng.randint(0, 86399))
    return moment.replace(microsecond=rng.choice((0, 0, 0, 1, 500_000, 999_999, rng.randint(0, 999_999))))


def _heartbeat(rng: random.Random, now: datetime.datetime, timeout: int) -> datetime.datetime:
    """updated_at: whole seconds, around `timeout` before the instant's whole second."""
    t = timeout
    second = now.replace(microsecond=0)
    pick = rng.random()
    if pick < 0.03:
        return FAR_FUTURE
    if pick < 0.05:
        return EPOCH
    age = rng.choice(
        (
            t,
            t,
            t,
            t + 1,
            t - 1,
            -t,
            -t + 1,
            -t - 1,  # the boundary, both sides, past and future
            0,
            rng.randint(min(t, 0), max(t, 1)),  # fresh
            -rng.randint(1, 100),  # a little ahead (clock skew)
            rng.randint(abs(t) + 2, abs(t) + 10_000_000),  # long dead
        )
    )
    return second - datetime.timedelta(seconds=age)


def _row(rng: random.Random, number: int, now: datetime.datetime, timeout: int) -> dict:
    updated_at = _heartbeat(rng, now, timeout)
    created_at = rng.choice(
        (None, updated_at, updated_at - datetime.timedelta(days=rng.randint(0, 900)), now.replace(microsecond=0))
    )
    return {
        "id": number,
        "hostname": rng.choice(HOSTS).format(number),
        "drivers": rng.choice(DRIVERS),
        "online": int(rng.random() < 0.75),
        "conductor_group": rng.choice(GROUPS),
        "created_at": created_at,
        "updated_at": updated_at,
        "version": rng.choice(VERSIONS),
    }


def generate(seed: int) -> Cloud:
    rng = random.Random(seed)
    now = _instant(rng)
    heartbeat_timeout = rng.choice(TIMEOUTS)
    timeout = DEFAULT_TIMEOUT if heartbeat_timeout is None else heartbeat_timeout
    # ids are not 1..n: a deleted conductor leaves a gap, and the API lists by id.
    numbers = sorted(rng.sample(range(1, 200), rng.randint(4, 26)))
    rows = [_row(rng, number, now, timeout) for number in numbers]
    rng.shuffle(rows)
    return Cloud(seed, now, heartbeat_timeout, rows)


def conductor(number: int, hostname: str, updated_at: datetime.datetime | None = None, **extra) -> dict:
    """A hand-made row: online, no group, one driver, current version; any column can be overridden."""
    row = {
        "id": number,
        "hostname": hostname,
        "drivers": '["ipmi"]',
        "online": 1,
        "conductor_group": "",
        "created_at": FIRST_INSTANT,
        "updated_at": updated_at,
        "version": "1.6",
    }
    row.update(extra)
    return row


def stored_drivers(row: dict) -> list[str] | None:
    """The drivers column as JSON; only for counting cases, the verdicts come from Ironic."""
    return None if row["drivers"] is None else json.loads(row["drivers"])
