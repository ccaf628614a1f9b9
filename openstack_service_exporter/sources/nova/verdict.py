"""Nova's rules for "is this service up" and "which zone is it in": pure functions, no I/O.

Every timestamp here is an integer count of microseconds since 1970-01-01 in naive UTC, the way
Nova stores DATETIME columns. Integers keep the comparison at the threshold exact (Nova compares
float seconds; at the sub-second scale around the threshold both agree to the microsecond).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from ..base import MICROS, Judged

PROJECT = "nova"

# NOTE: Nova hides these from GET /os-services because they never heartbeat
# (nova/api/openstack/compute/services.py, _get_services).
API_BINARIES = ("nova-osapi_compute", "nova-metadata")


class HeartbeatRule(enum.Enum):
    """Which column Nova reads as the last heartbeat; depends on the schema's age."""

    # Ocata and later (nova/servicegroup/drivers/db.py, is_up): last_seen_up or created_at.
    LAST_SEEN_UP = "last_seen_up"
    # Up to Kilo the table has no last_seen_up column: updated_at or created_at.
    UPDATED_AT = "updated_at"


class ServiceRow(NamedTuple):
    """One row of a cell's `services` table, as read; NULL columns are None.

    A NamedTuple, not a dataclass: a large cloud has 100,000 rows, and a tuple is built several
    times faster. `disabled` and `forced_down` are the column's values (0, 1 or NULL): read them by
    truth value, so NULL is false.
    """

    cell: str
    id: int
    host: str | None
    binary: str | None
    topic: str | None
    report_count: int
    disabled: int | bool | None
    disabled_reason: str | None
    forced_down: int | bool | None
    version: int | None
    uuid: str | None
    created_at: int | None
    updated_at: int | None
    last_seen_up: int | None


def effective_down_time(service_down_time: int, report_interval: int) -> int:
    """The threshold Nova really uses.

    nova/servicegroup/api.py, API.__init__: a down time not above the report interval would
    flap, so Nova replaces it with int(report_interval * 2.5) (truncated: 7 gives 17).
    """
    if service_down_time <= report_interval:
        return int(report_interval * 2.5)
    return service_down_time


def heartbeat(row: ServiceRow, rule: HeartbeatRule) -> int | None:
    """The timestamp Nova judges by, or None when the row has none at all."""
    if rule is HeartbeatRule.LAST_SEEN_UP:
        # NOTE: updated_at is deliberately ignored: enable/disable/force-down touch it too.
        return row.last_seen_up if row.last_seen_up is not None else row.created_at
    return row.updated_at if row.updated_at is not None else row.created_at


def is_up(row: ServiceRow, beat: int | None, now: int, threshold: int) -> bool:
    """Nova's verdict (nova/servicegroup/drivers/db.py, DbDriver.is_up).

    forced_down wins; otherwise up while |now - heartbeat| <= threshold, inclusive, so a
    heartbeat in the future is up only while it is at most `threshold` ahead. Nova raises on a
    row with no timestamp at all; such a row is down here. NULL forced_down reads as false.
    """
    if row.forced_down:
        return False
    if beat is None:
        return False
    return abs(now - beat) <= threshold * MICROS


def zone_of(
    row: ServiceRow,
    host_zones: dict[str, str],
    default_zone: str,
    internal_zone: str,
) -> str:
    """Nova's availability zone for a service (nova/availability_zones.py, set_availability_zones).

    Only topic 'compute' rows take the zones of their host's aggregates; `host_zones` maps a host
    (exact, case-sensitive) to its AZ names already sorted and joined with ','.
    """
    if row.topic != "compute":
        return internal_zone
    if row.host is None:
        return default_zone
    return host_zones.get(row.host, default_zone)


def join_zones(names: set[str]) -> str:
    """Several AZ aggregates on one host: Nova joins the names in set order; sorted here, stable."""
    return ",".join(sorted(names))


def judge(
    rows: list[ServiceRow],
    now: int,
    threshold: int,
    rule: HeartbeatRule | dict[str, HeartbeatRule],
    host_zones: dict[str, str],
    default_zone: str,
    internal_zone: str,
) -> list[Judged]:
    """Nova's verdict and zone for every row; `rule` may differ per cell (schemas of other ages).

    The same rules as heartbeat(), is_up() and zone_of() above, written out in one loop: this runs
    for every service at every scrape, and three calls per row are a third of its cost.
    """
    rules = rule if isinstance(rule, dict) else None
    limit = threshold * MICROS
    zones_get = host_zones.get
    new = tuple.__new__  # Judged(...) goes through a Python-level __new__: twice the cost per row
    out: list[Judged] = []
    append = out.append
    by_updated_at = rule is HeartbeatRule.UPDATED_AT
    last_cell = None
    for row in rows:
        # ServiceRow's fields, in order (unpacked at once: six attribute reads cost more)
        cell, _, host, binary, topic, _, disabled, _, forced_down, _, _, created_at, updated_at, last_seen_up = row
        if rules is not None and cell is not last_cell:  # rows come cell by cell: look up once per cell
            by_updated_at, last_cell = rules[cell] is HeartbeatRule.UPDATED_AT, cell
        if by_updated_at:
            beat = updated_at if updated_at is not None else created_at
        else:
            beat = last_seen_up if last_seen_up is not None else created_at
        if topic != "compute":
            zone = internal_zone
        else:
            zone = default_zone if host is None else zones_get(host, default_zone)
        if beat is None:
            append(new(Judged, (PROJECT, cell, binary, host, zone, False, None, None, disabled, row)))
        else:
            age = now - beat
            append(
                new(
                    Judged,
                    (
                        PROJECT,
                        cell,
                        binary,
                        host,
                        zone,
                        not forced_down and -limit <= age <= limit,
                        beat,
                        age,
                        disabled,
                        row,
                    ),
                )
            )
    return out


def cache_key(row: ServiceRow) -> str:
    """The row's key in the mc driver's cache (MemcachedDriver: "%(topic)s:%(host)s" % service; a NULL
    reads "None" there and here)."""
    return f"{row.topic}:{row.host}"


def judge_cached(
    rows: list[ServiceRow],
    now: int,
    heartbeats: dict[str, int | None],
    host_zones: dict[str, str],
    default_zone: str,
    internal_zone: str,
) -> list[Judged]:
    """Nova's verdict with servicegroup_driver = mc (nova/servicegroup/api.py, service_is_up, then
    nova/servicegroup/drivers/mc.py, MemcachedDriver.is_up): forced_down wins; otherwise up while the
    row's key is in the cache, unexpired. `heartbeats` maps each key found (cache_key) to the
    cached time (µs, None when it is no datetime); the database's heartbeat columns play no part."""
    out: list[Judged] = []
    append = out.append
    new = tuple.__new__
    for row in rows:
        found = cache_key(row)
        beat = heartbeats.get(found)
        up = not row.forced_down and found in heartbeats
        append(
            new(
                Judged,
                (
                    PROJECT,
                    row.cell,
                    row.binary,
                    row.host,
                    zone_of(row, host_zones, default_zone, internal_zone),
                    up,
                    beat,
                    None if beat is None else now - beat,
                    row.disabled,
                    row,
                ),
            )
        )
    return out


def updated_time(row: ServiceRow, cached: int | None) -> int | None:
    """What GET /os-services shows as updated_at with the mc driver (MemcachedDriver.updated_time): the
    cached time unless the row's updated_at is later."""
    if cached is not None and (row.updated_at is None or row.updated_at <= cached):
        return cached
    return row.updated_at
