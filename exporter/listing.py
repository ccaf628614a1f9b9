"""Snapshot -> the table of `nova-manage service list`, or JSON, for people and scripts."""
from __future__ import annotations

import datetime
import json

from .verdict import MICROS, Judged

# nova-manage's own columns and widths (nova/cmd/manage.py, ServiceCommands.list, Icehouse), then ours.
TABLE_FORMAT = "%-16s %-36s %-16s %-10s %-5s %-19s %-16s %s"
TABLE_HEADER = ("Binary", "Host", "Zone", "Status", "State", "Updated_At", "Cell", "Heartbeat_Age")
JSON_KEYS = ("cell", "binary", "host", "zone", "status", "state", "forced_down", "disabled_reason",
             "updated_at", "last_seen_up", "heartbeat_age_seconds")


def iso(us: int | None) -> str | None:
    """Naive-UTC microseconds as ISO 8601 with a Z, the way a script wants it."""
    if us is None:
        return None
    moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=us)
    return moment.isoformat() + "Z"


def plain_time(us: int | None) -> str:
    if us is None:
        return "None"  # what nova-manage printed for a service that never reported
    return str(datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=us))


def select(services: list[Judged], host: str | None = None, binary: str | None = None) -> list[Judged]:
    return [j for j in services
            if (host is None or j.row.host == host) and (binary is None or j.row.binary == binary)]


def as_record(j: Judged) -> dict:
    row = j.row
    return {
        "cell": row.cell,
        "binary": row.binary,
        "host": row.host,
        "zone": j.zone,
        "status": "disabled" if row.disabled else "enabled",
        "state": "up" if j.up else "down",
        "forced_down": bool(row.forced_down),
        "disabled_reason": row.disabled_reason,
        "updated_at": iso(row.updated_at),
        "last_seen_up": iso(row.last_seen_up),
        "heartbeat_age_seconds": None if j.age_us is None else j.age_us / MICROS,
    }


def as_json(services: list[Judged]) -> str:
    return json.dumps([as_record(j) for j in services], indent=2, ensure_ascii=False)


def as_table(services: list[Judged]) -> str:
    lines = [TABLE_FORMAT % TABLE_HEADER]
    for j in services:
        row = j.row
        age = "-" if j.age_us is None else f"{j.age_us / MICROS:.0f}s"
        lines.append(TABLE_FORMAT % (
            row.binary, row.host, j.zone, "disabled" if row.disabled else "enabled",
            ":-)" if j.up else "XXX", plain_time(row.updated_at), row.cell, age))
    return "\n".join(lines)
