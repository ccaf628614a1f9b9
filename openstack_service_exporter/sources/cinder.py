"""Cinder: every volume, scheduler and backup service, judged as cinder-api judges them
(GET /v3/{project_id}/os-services, i.e. `openstack volume service list`).

Table read (SELECT on it is all a read-only user needs): services of cinder.conf's [database].

    SELECT id, host, binary, ..., created_at, updated_at FROM services WHERE deleted = false ORDER BY id

Cinder's rule (cinder/api/v3/services.py, ServiceController.index):
    heartbeat = updated_at or created_at
    up  <=>  |now - heartbeat| <= [DEFAULT] service_down_time      (abs() and inclusive; default 60)
cinder-api never applies the 2.5 x report_interval override of cinder/service.py
(Service.basic_config_check runs only in the volume, scheduler and backup processes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import TYPE_CHECKING, NamedTuple

import sqlalchemy as sa
from oslo_config import cfg

from ..config import own_files_opts, read_own_files
from ..reader import OneTableQuery, ReadContext, read_one
from ..snapshot import Reading
from ..sql import Query, epoch_us, require_columns
from .base import MICROS, InfoLabel, Judged, iso, reports_family

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

PROJECT = "cinder"

# cinder.conf's options that the rule needs, with Cinder's names and defaults (cinder/service.py,
# cinder/db/api.py through oslo.db).
CINDER_OPTS: dict[str | None, list[cfg.Opt]] = {
    None: [
        cfg.IntOpt(
            "service_down_time",
            default=60,
            help="Maximum seconds since a service's last heartbeat for cinder-api to call it up.",
        )
    ],
    "database": [cfg.StrOpt("connection", secret=True, help="SQLAlchemy URL of Cinder's database.")],
}


class CinderRow(NamedTuple):
    """One listed row of Cinder's `services` (NULL columns are None; times in integer µs)."""

    id: int
    host: str | None
    binary: str | None
    topic: str | None
    report_count: int
    disabled: int | bool | None
    disabled_reason: str | None
    availability_zone: str | None
    uuid: str | None
    cluster_name: str | None
    frozen: int | bool | None
    replication_status: str | None
    active_backend_id: str | None
    created_at: int | None
    updated_at: int | None


_PLAIN = CinderRow._fields[:-2]
_TIMESTAMPS = CinderRow._fields[-2:]
# Present in every Cinder since Ussuri (uuid since Queens, cluster_name since Newton); what is
# missing from an older table reads as NULL.
_REQUIRED = ("id", "host", "binary", "report_count", "disabled", "created_at", "updated_at", "deleted")
services = sa.table("services", *(sa.column(c) for c in _PLAIN + _TIMESTAMPS + ("deleted",)))


def services_query(columns: frozenset[str]) -> Query:
    """The rows cinder-api lists: `deleted` false (a Boolean; NULL is not listed either), by id."""
    require_columns("services", columns, _REQUIRED, "a Cinder database")
    plain = (services.c[c] if c in columns else sa.null().label(c) for c in _PLAIN)
    stamps = (epoch_us(services.c[c]).label(c) for c in _TIMESTAMPS)
    return sa.select(*plain, *stamps).where(services.c.deleted == sa.false()).order_by(services.c.id)


SERVICES = OneTableQuery("services", services_query, CinderRow._make)


def heartbeat(row: CinderRow) -> int | None:
    return row.updated_at if row.updated_at is not None else row.created_at


def newest_per_key(rows: list[CinderRow]) -> tuple[list[CinderRow], int]:
    """One row per (binary, host), the one with the newest heartbeat (a tie: the higher id), and how
    many were left out. Cinder has no unique key there: two live rows can share a backend name."""
    chosen: dict[tuple[str | None, str | None], CinderRow] = {}
    for row in rows:  # by id
        key = (row.binary, row.host)
        kept = chosen.get(key)
        if kept is None or (heartbeat(row) or -1) >= (heartbeat(kept) or -1):
            chosen[key] = row
    if len(chosen) == len(rows):
        return rows, 0
    keep = {id(r) for r in chosen.values()}
    return [r for r in rows if id(r) in keep], len(rows) - len(chosen)


@dataclass(frozen=True)
class CinderConfig:
    """Cinder as configured: cinder-api's threshold and database."""

    database_connection: str
    service_down_time: int = 60

    @property
    def source(self) -> CinderSource:
        return SOURCE

    @property
    def down_time(self) -> int:
        return self.service_down_time

    notes: tuple[str, ...] = ()

    def urls(self) -> list[str]:
        return [self.database_connection]

    def read(self, ctx: ReadContext, deadline: float, budget: float) -> Reading:
        health, result = read_one(ctx, PROJECT, self.database_connection, SERVICES, deadline, budget)
        if result is None:
            return Reading(self, [], [health])
        rows, duplicates = newest_per_key(result.rows)
        return Reading(self, rows, [replace(health, duplicates=duplicates)])

    def judge(self, reading: Reading, now: int) -> list[Judged]:
        limit = self.service_down_time * MICROS
        new = tuple.__new__  # Judged(...) goes through a Python-level __new__: twice the cost per row
        out: list[Judged] = []
        append = out.append
        for row in reading.rows:
            # CinderRow's fields, in order (unpacked at once: attribute reads cost more)
            _, host, binary, _, _, disabled, _, zone, _, _, _, _, _, created_at, updated_at = row
            beat = updated_at if updated_at is not None else created_at
            if beat is None:  # cinder-api fails on such a row (None arithmetic); it is down here
                append(new(Judged, (PROJECT, "", binary, host, zone or "", False, None, None, disabled, row)))
            else:
                age = now - beat
                append(
                    new(
                        Judged,
                        (PROJECT, "", binary, host, zone or "", -limit <= age <= limit, beat, age, disabled, row),
                    )
                )
        return out

    def health_families(self, reading: Reading, prefix: str) -> Iterable[Metric]:
        return ()

    def record(self, j: Judged) -> dict[str, object]:
        row: CinderRow = j.row
        return {
            "id": row.id,
            "uuid": row.uuid,
            "cluster": row.cluster_name,
            "frozen": bool(row.frozen),
            "replication_status": row.replication_status,
            "active_backend_id": row.active_backend_id,
            "report_count": row.report_count,
            "updated_at": iso(row.updated_at),
            "created_at": iso(row.created_at),
        }

    def updated_at(self, j: Judged) -> int | None:
        row: CinderRow = j.row
        return row.updated_at


def configure(conf: cfg.ConfigOpts) -> CinderConfig | None:
    own = read_own_files(conf, PROJECT, CINDER_OPTS)
    if own is None:
        return None
    return CinderConfig(database_connection=own.database.connection, service_down_time=own.service_down_time)


def _field(name: str) -> itemgetter[int]:
    return itemgetter(CinderRow._fields.index(name))


def _flag_text(name: str) -> Callable[[CinderRow], str]:
    get = _field(name)
    return lambda row: "true" if get(row) else "false"


class CinderSource:
    project = PROJECT
    hint = "[cinder] config_file (cinder.conf of a cinder-api host)"
    families = (reports_family(_field("report_count")),)
    info_labels = (
        InfoLabel("cluster", _field("cluster_name")),
        InfoLabel("uuid", _field("uuid")),
        InfoLabel("frozen", _flag_text("frozen")),
        InfoLabel("replication_status", _field("replication_status")),
        InfoLabel("active_backend_id", _field("active_backend_id")),
        InfoLabel("disabled_reason", _field("disabled_reason")),
    )

    def option_groups(self) -> dict[str | None, list[cfg.Opt]]:
        return {PROJECT: own_files_opts(PROJECT, "cinder-api")}

    def configure(self, conf: cfg.ConfigOpts) -> CinderConfig | None:
        return configure(conf)


SOURCE = CinderSource()
