"""Nova's tables as SQLAlchemy Core, the queries the exporter runs, and cell URL templating.

Tables read (and nothing else, so a read-only user needs SELECT on these only):
  cell database: services
  API database:  cell_mappings, aggregates, aggregate_hosts, aggregate_metadata
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from operator import add
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.sql.expression import ColumnElement

from ... import sql
from ...sql import Query, epoch_us, fetch_all, sql_text
from .verdict import API_BINARIES, HeartbeatRule, ServiceRow, join_zones

CELL0_UUID = "00000000-0000-0000-0000-000000000000"

# Columns every Nova since Icehouse has; the others are detected per database.
_ALWAYS = ("id", "host", "binary", "topic", "report_count", "disabled", "disabled_reason")
_OPTIONAL = ("forced_down", "version", "uuid")
_TIMESTAMPS = ("created_at", "updated_at", "last_seen_up")

services = sa.table(
    "services",
    *(sa.column(c) for c in _ALWAYS + _OPTIONAL + _TIMESTAMPS + ("deleted",)),
)
cell_mappings = sa.table(
    "cell_mappings",
    sa.column("id"),
    sa.column("uuid"),
    sa.column("name"),
    sa.column("database_connection"),
    sa.column("disabled"),
)
aggregates = sa.table("aggregates", sa.column("id"))
aggregate_hosts = sa.table("aggregate_hosts", sa.column("host"), sa.column("aggregate_id"))
aggregate_metadata = sa.table("aggregate_metadata", sa.column("aggregate_id"), sa.column("key"), sa.column("value"))


def detect_columns(conn: DBAPIConnection, dialect: Dialect) -> frozenset[str]:
    """The columns of `services` as this cell database has them."""
    return sql.detect_columns(conn, dialect, "services")


def heartbeat_rule(columns: frozenset[str]) -> HeartbeatRule:
    """A table without last_seen_up can only come from a pre-Liberty Nova, which judged by updated_at."""
    return HeartbeatRule.LAST_SEEN_UP if "last_seen_up" in columns else HeartbeatRule.UPDATED_AT


def services_query(columns: frozenset[str]) -> Query:
    """One query for every listed service of a cell, in ServiceRow's field order after `cell`.

    Rows Nova lists: deleted = 0 (a soft delete sets deleted = id; NULL is hidden too), and never the
    API binaries. A NULL binary is kept (Nova filters the API binaries in Python, where None passes).
    """
    missing = [c for c in ("id", "report_count") if c not in columns]
    if missing or "deleted" not in columns:
        raise sa.exc.NoSuchColumnError(
            "table services lacks " + ", ".join(missing or ["deleted"]) + ": not a Nova cell database"
        )

    def plain(name: str) -> ColumnElement[Any]:
        return services.c[name] if name in columns else sa.null().label(name)

    def stamp(name: str) -> ColumnElement[Any]:
        return epoch_us(services.c[name]).label(name) if name in columns else sa.null().label(name)

    binary = services.c.binary
    return (
        sa.select(*(plain(c) for c in _ALWAYS + _OPTIONAL), *(stamp(c) for c in _TIMESTAMPS))
        .where(services.c.deleted == 0)
        .where(sa.or_(binary.is_(None), binary.not_in(API_BINARIES)))
        .order_by(services.c.id)
    )


def read_services(conn: DBAPIConnection, cell: str, query: str) -> list[ServiceRow]:
    """Rows of sql_text(services_query(...)) as ServiceRows, `cell` first.

    NOTE: built in C (map) straight from the driver's tuples: SQLAlchemy's Row objects cost a
    quarter of a 10,000-row read with mysqlclient, and at 100,000 rows anything per row counts.
    """
    return list(map(partial(tuple.__new__, ServiceRow), map(add, repeat((cell,)), fetch_all(conn, query))))


@dataclass(frozen=True)
class CellMapping:
    uuid: str
    name: str | None
    database_connection: str
    disabled: bool


_MAPPINGS = sa.select(
    cell_mappings.c.uuid, cell_mappings.c.name, cell_mappings.c.database_connection, cell_mappings.c.disabled
).order_by(cell_mappings.c.id)


def read_cell_mappings(conn: DBAPIConnection, dialect: Dialect) -> list[CellMapping]:
    """Every cell, cell0 and disabled ones included, in Nova's order (by id)."""
    rows = fetch_all(conn, sql_text(_MAPPINGS, dialect))
    return [CellMapping(u, n, c or "", bool(d)) for u, n, c, d in rows]


_HOST_ZONES = (
    sa.select(aggregate_hosts.c.host, aggregate_metadata.c.value)
    .select_from(
        aggregate_hosts.join(aggregates, aggregates.c.id == aggregate_hosts.c.aggregate_id).join(
            aggregate_metadata, aggregate_metadata.c.aggregate_id == aggregates.c.id
        )
    )
    .where(aggregate_metadata.c.key == "availability_zone")
)


def read_host_zones(conn: DBAPIConnection, dialect: Dialect) -> dict[str, str]:
    """host -> its AZ names joined (verdict.join_zones), from the aggregates holding it, in one query
    (nova/availability_zones.py reads the same join through
    AggregateList.get_by_metadata_key('availability_zone'))."""
    rows = fetch_all(conn, sql_text(_HOST_ZONES, dialect))
    zones = dict(rows)
    if len(zones) == len(rows):  # the usual cloud: each host in one AZ aggregate at most (made in C)
        zones.pop(None, None)
        return zones
    names: dict[str, set[str]] = {}
    for host, value in rows:
        if host is not None:
            names.setdefault(host, set()).add(value)
    return {host: join_zones(each) for host, each in names.items()}


def _parse_netloc(netloc: str) -> dict[str, str | None]:
    """user:pass@host:port of one member of a comma-separated netloc, split as Nova splits it
    (nova/objects/cell_mapping.py, _parse_netloc): raw text, no decoding, port kept as text."""
    parts: dict[str, str | None] = {"username": None, "password": None, "hostname": None, "port": None}
    userpass, hostport = netloc.split("@", 1) if "@" in netloc else ("", netloc)
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError("Invalid IPv6 URL")
        parts["hostname"], parts["port"] = hostport[1:end], hostport[end + 1 :]
    elif ":" in hostport:
        parts["hostname"], parts["port"] = hostport.split(":", 1)
    else:
        parts["hostname"] = hostport
    if ":" in userpass:
        parts["username"], parts["password"] = userpass.split(":", 1)
    else:
        parts["username"] = userpass
    return parts


def format_cell_url(template: str, base: str | None) -> str:
    """A cell's database_connection, formatted from the local [database] connection like Nova's
    CellMapping.format_db_url: hostname lower-cased and a missing port as the text 'None' (urlparse's
    doing), user and password raw, and on any error the template is used unchanged."""
    if base is None:
        return template
    try:
        url = urllib.parse.urlparse(base)
        subs = {
            "username": url.username,
            "password": url.password,
            "hostname": url.hostname,
            "port": url.port,
            "scheme": url.scheme,
            "query": url.query,
            "fragment": url.fragment,
            "path": url.path.lstrip("/"),
        }
        if "," in url.netloc:
            for index, netloc in enumerate(url.netloc.split(","), start=1):
                for key, value in _parse_netloc(netloc).items():
                    subs[f"{key}{index}"] = value
        return template.format(**subs)
    except Exception:  # NOTE: Nova logs and falls back to the raw string on any failure; so do we.
        return template
