"""Ironic: every conductor, judged as ironic-api judges it (GET /v1/conductors, i.e.
`baremetal conductor list`, field `alive`).

Table read (SELECT on it is all a read-only user needs): conductors of ironic.conf's [database].

    SELECT id, hostname, drivers, online, conductor_group, created_at, updated_at FROM conductors ORDER BY id

Every row is listed: there is no soft delete (a clean stop sets online = false,
ironic/db/sqlalchemy/api.py unregister_conductor; `baremetal conductor delete` removes the row), and
hostname is unique, so no two rows share a series.

Ironic's rule (ironic/api/controllers/v1/conductor.py, convert_with_links):
    alive  <=>  online  and  not timeutils.is_older_than(updated_at, [conductor] heartbeat_timeout)
i.e. online and now - updated_at <= heartbeat_timeout (inclusive, no abs(): a heartbeat from the
future is alive; default 60, and neither 0 nor a negative value is refused).

Where ironic-api answers HTTP 500 for the whole list because of one row, the exporter still judges
every row: NULL updated_at or online is down (a NULL online reads as false), a version it does not
read plays no part, and a drivers value that is not a JSON list of strings reads as no drivers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
from oslo_config import cfg

from ..config import own_files_opts, read_own_files
from ..reader import OneTableQuery, ReadContext, read_one
from ..snapshot import Reading
from ..sql import Query, epoch_us, require_columns
from .base import FLAG, MICROS, InfoLabel, Judged, ServiceFamily, iso

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

PROJECT = "ironic"
BINARY = "ironic-conductor"

# ironic.conf's options that the rule needs, with Ironic's names, defaults and bounds
# (ironic/conf/conductor.py; [database] through oslo.db).
IRONIC_OPTS: dict[str | None, list[cfg.Opt]] = {
    "conductor": [
        cfg.IntOpt(
            "heartbeat_timeout",
            default=60,
            max=315576000,
            help="Maximum seconds since a conductor's last check-in for ironic-api to call it alive.",
        )
    ],
    "database": [cfg.StrOpt("connection", secret=True, help="SQLAlchemy URL of Ironic's database.")],
}


class IronicRow(NamedTuple):
    """One row of Ironic's `conductors` (NULL columns are None; times in integer µs)."""

    id: int
    hostname: str
    drivers: tuple[str, ...]
    online: int | bool | None
    conductor_group: str
    created_at: int | None
    updated_at: int | None


_PLAIN = ("id", "hostname", "drivers", "online", "conductor_group")
_TIMESTAMPS = ("created_at", "updated_at")
# conductor_group came with Rocky: an older table's conductors are all in the default group, ''.
_REQUIRED = ("id", "hostname", "drivers", "online", "created_at", "updated_at")
conductors = sa.table("conductors", *(sa.column(c) for c in _PLAIN + _TIMESTAMPS))


def conductors_query(columns: frozenset[str]) -> Query:
    require_columns("conductors", columns, _REQUIRED, "an Ironic database")
    plain = (conductors.c[c] if c in columns else sa.literal("").label(c) for c in _PLAIN)
    stamps = (epoch_us(conductors.c[c]).label(c) for c in _TIMESTAMPS)
    return sa.select(*plain, *stamps).order_by(conductors.c.id)


@lru_cache(maxsize=1024)  # a cloud's conductors share a few driver lists
def drivers_of(text: str | bytes | None) -> tuple[str, ...]:
    """The stored list as Ironic reads it: oslo.db's JsonEncodedList (json.loads), then the Conductor
    object's ListOfStringsField(nullable=True) (ironic/objects/conductor.py), whose items are
    oslo.versionedobjects' String (an int or float becomes its str()). NULL and JSON null show as []
    in the API. What Ironic cannot read (it fails the whole listing) is no drivers here."""
    if text is None:
        return ()
    try:
        value = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        return ()
    return tuple(map(str, value))


def _conductor(fetched: tuple[Any, ...]) -> IronicRow:
    id_, host, drivers, online, group, created, updated = fetched
    return IronicRow(id_, host, drivers_of(drivers), online, group or "", created, updated)


CONDUCTORS = OneTableQuery("conductors", conductors_query, _conductor)


@dataclass(frozen=True)
class IronicConfig:
    """Ironic as configured: ironic-api's threshold and database."""

    database_connection: str
    heartbeat_timeout: int = 60
    notes: tuple[str, ...] = ()

    @property
    def source(self) -> IronicSource:
        return SOURCE

    @property
    def down_time(self) -> int:
        return self.heartbeat_timeout

    def urls(self) -> list[str]:
        return [self.database_connection]

    def read(self, ctx: ReadContext, deadline: float, budget: float) -> Reading:
        health, result = read_one(ctx, PROJECT, self.database_connection, CONDUCTORS, deadline, budget)
        return Reading(self, [] if result is None else result.rows, [health])

    def judge(self, reading: Reading, now: int) -> list[Judged]:
        # is_older_than(before, seconds) is utcnow() - before > timedelta(seconds): alive up to and
        # including the limit, and for any heartbeat ahead of now.
        limit = self.heartbeat_timeout * MICROS
        out: list[Judged] = []
        for row in reading.rows:
            age = None if row.updated_at is None else now - row.updated_at
            up = bool(row.online) and age is not None and age <= limit
            out.append(Judged(PROJECT, "", BINARY, row.hostname, "", up, row.updated_at, age, False, row))
        return out

    def health_families(self, reading: Reading, prefix: str) -> Iterable[Metric]:
        return ()

    def record(self, j: Judged) -> dict[str, object]:
        row: IronicRow = j.row
        return {
            "id": row.id,
            "online": bool(row.online),
            "conductor_group": row.conductor_group,
            "drivers": list(row.drivers),
            "updated_at": iso(row.updated_at),
            "created_at": iso(row.created_at),
        }

    def updated_at(self, j: Judged) -> int | None:
        row: IronicRow = j.row
        return row.updated_at


def configure(conf: cfg.ConfigOpts) -> IronicConfig | None:
    own = read_own_files(conf, PROJECT, IRONIC_OPTS)
    if own is None:
        return None
    return IronicConfig(database_connection=own.database.connection, heartbeat_timeout=own.conductor.heartbeat_timeout)


def _field(name: str) -> itemgetter[int]:
    return itemgetter(IronicRow._fields.index(name))


_drivers = _field("drivers")


class IronicSource:
    project = PROJECT
    hint = "[ironic] config_file (ironic.conf of an ironic-api host)"
    families = (
        ServiceFamily(
            "service_online",
            "1 when the row says the service is online (Ironic: conductors.online); 0 after a clean stop, "
            "while a crashed one stays 1 with an old heartbeat.",
            FLAG,
            _field("online"),
        ),
    )
    info_labels = (
        InfoLabel("conductor_group", _field("conductor_group")),
        InfoLabel("drivers", lambda row: ",".join(_drivers(row))),
    )

    def option_groups(self) -> dict[str | None, list[cfg.Opt]]:
        return {PROJECT: own_files_opts(PROJECT, "ironic-api")}

    def configure(self, conf: cfg.ConfigOpts) -> IronicConfig | None:
        return configure(conf)


SOURCE = IronicSource()
