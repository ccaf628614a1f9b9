"""Judged services -> a table in the columns of the projects' own `service list` commands (with
Project and Cell), or JSON, for people and scripts."""

from __future__ import annotations

import datetime
import json

from .collector import Groups
from .sources.base import MICROS, Configured, Judged

# nova-manage's own columns and widths (nova/cmd/manage.py, ServiceCommands.list, Icehouse), then ours.
TABLE_FORMAT = "%-8s %-16s %-36s %-16s %-10s %-5s %-19s %-16s %s"
TABLE_HEADER = ("Project", "Binary", "Host", "Zone", "Status", "State", "Updated_At", "Cell", "Heartbeat_Age")
# Keys of every JSON object; each project adds its own fields (sources/*: record).
JSON_KEYS = ("project", "cell", "binary", "host", "zone", "status", "state", "disabled_reason", "heartbeat_age_seconds")


def plain_time(us: int | None) -> str:
    if us is None:
        return "None"  # what the projects' manage commands print for a service that never reported
    return str(datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=us))


def select(groups: Groups, host: str | None = None, binary: str | None = None) -> Groups:
    return [
        (configured, [j for j in judged if (host is None or j.host == host) and (binary is None or j.binary == binary)])
        for configured, judged in groups
    ]


def as_record(configured: Configured, j: Judged) -> dict[str, object]:
    record: dict[str, object] = {
        "project": j.project,
        "cell": j.cell,
        "binary": j.binary,
        "host": j.host,
        "zone": j.zone,
        "status": "disabled" if j.disabled else "enabled",
        "state": "up" if j.up else "down",
        "disabled_reason": getattr(j.row, "disabled_reason", None),
    }
    record.update(configured.record(j))
    record["heartbeat_age_seconds"] = None if j.age_us is None else j.age_us / MICROS
    return record


def as_json(groups: Groups) -> str:
    return json.dumps(
        [as_record(configured, j) for configured, judged in groups for j in judged], indent=2, ensure_ascii=False
    )


def as_table(groups: Groups) -> str:
    lines = [TABLE_FORMAT % TABLE_HEADER]
    for configured, judged in groups:
        for j in judged:
            age = "-" if j.age_us is None else f"{j.age_us / MICROS:.0f}s"
            lines.append(
                TABLE_FORMAT
                % (
                    j.project,
                    j.binary,
                    j.host,
                    j.zone,
                    "disabled" if j.disabled else "enabled",
                    ":-)" if j.up else "XXX",
                    plain_time(configured.updated_at(j)),
                    j.cell,
                    age,
                )
            )
    return "\n".join(lines)
