"""Nova's tables as SQLAlchemy Core, the queries the exporter runs, and cell URL templating.

Tables read (and nothing else, so a read-only user needs SELECT on these only):
  cell database: services
  API database:  cell_mappings, aggregates, aggregate_hosts, aggregate_metadata
"""
from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from .verdict import API_BINARIES, HeartbeatRule, ServiceRow

CELL0_UUID = "00000000-0000-0000-0000-000000000000"

# Columns every Nova since Icehouse has; the others are detected per database.
_ALWAYS = ("id", "host", "binary", "topic", "report_count", "disabled", "disabled_reason")
_OPTIONAL = ("forced_down", "version", "uuid")
_TIMESTAMPS = ("created_at", "updated_at", "last_seen_up")

services = sa.table(
    "services",
    *(sa.column(c) for c in _ALWAYS + _OPTIONAL + _TIMESTAMPS + ("deleted",)),
)
cell_mappings = sa.table("cell_mappings", sa.column("id"), sa.column("uuid"), sa.column("name"),
                         sa.column("database_connection"), sa.column("disabled"))
aggregates = sa.table("aggregates", sa.column("id"))
aggregate_hosts = sa.table("aggregate_hosts", sa.column("host"), sa.column("aggregate_id"))
aggregate_metadata = sa.table("aggregate_metadata", sa.column("aggregate_id"), sa.column("key"),
                              sa.column("value"))


class epoch_us(FunctionElement):
    """A naive-UTC DATETIME as integer microseconds since 1970, computed by the server.

    Integers cross the wire and the driver far cheaper than DATETIME objects, and stay exact.
    TIMESTAMPDIFF on DATETIME values ignores the session time zone, which is what naive UTC needs.
    A zero date ('0000-00-00') comes back NULL: it is no heartbeat.
    """

    type = sa.BigInteger()
    inherit_cache = True


@compiles(epoch_us, "mysql")
def _epoch_us_mysql(element, compiler, **kw):
    return "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', %s)" % compiler.process(element.clauses, **kw)


@compiles(epoch_us, "sqlite")
def _epoch_us_sqlite(element, compiler, **kw):
    col = compiler.process(element.clauses, **kw)
    # strftime('%s') is whole seconds; '%f' is SS.SSS, so milliseconds are kept.
    return (f"(CAST(strftime('%s', {col}) AS INTEGER) * 1000000"
            f" + CAST(substr(strftime('%f', {col}), 4) AS INTEGER) * 1000)")


@compiles(epoch_us)
def _epoch_us_default(element, compiler, **kw):
    return "CAST(EXTRACT(EPOCH FROM %s) * 1000000 AS BIGINT)" % compiler.process(element.clauses, **kw)


class utc_now_us(FunctionElement):
    """The database server's own UTC clock, in microseconds since 1970."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(utc_now_us, "mysql")
def _now_mysql(element, compiler, **kw):
    return "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6))"


@compiles(utc_now_us, "sqlite")
def _now_sqlite(element, compiler, **kw):
    return ("(CAST(strftime('%s', 'now') AS INTEGER) * 1000000"
            " + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000)")


@compiles(utc_now_us)
def _now_default(element, compiler, **kw):
    return "CAST(EXTRACT(EPOCH FROM CURRENT_TIMESTAMP) * 1000000 AS BIGINT)"


def detect_columns(conn: Connection) -> frozenset[str]:
    """The columns of `services` as this database has them (an empty SELECT: no information_schema,
    so it works for a user with SELECT on `services` alone)."""
    result = conn.execute(sa.select(sa.text("*")).select_from(sa.table("services")).limit(0))
    return frozenset(k.lower() for k in result.keys())


def heartbeat_rule(columns: frozenset[str]) -> HeartbeatRule:
    """A table without last_seen_up can only come from a pre-Liberty Nova, which judged by updated_at."""
    return HeartbeatRule.LAST_SEEN_UP if "last_seen_up" in columns else HeartbeatRule.UPDATED_AT


def services_query(columns: frozenset[str]) -> sa.Select:
    """One query for every listed service of a cell, in ServiceRow's field order after `cell`.

    Rows Nova lists: deleted = 0 (a soft delete sets deleted = id; NULL is hidden too), and never the
    API binaries. A NULL binary is kept (Nova filters the API binaries in Python, where None passes).
    """
    missing = [c for c in ("id", "report_count") if c not in columns]
    if missing or "deleted" not in columns:
        raise sa.exc.NoSuchColumnError(
            "table services lacks " + ", ".join(missing or ["deleted"]) + ": not a Nova cell database")

    def plain(name: str) -> ColumnElement:
        return services.c[name] if name in columns else sa.null().label(name)

    def stamp(name: str) -> ColumnElement:
        return epoch_us(services.c[name]).label(name) if name in columns else sa.null().label(name)

    binary = services.c.binary
    return (
        sa.select(*(plain(c) for c in _ALWAYS + _OPTIONAL), *(stamp(c) for c in _TIMESTAMPS))
        .where(services.c.deleted == 0)
        .where(sa.or_(binary.is_(None), binary.not_in(API_BINARIES)))
        .order_by(services.c.id)
    )


def compile_query(query: sa.Select, conn: Connection) -> str:
    """The query as this database's SQL text, its few constants inlined (no parameters to bind)."""
    return str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))


def read_services(conn: Connection, cell: str, sql: str) -> list[ServiceRow]:
    """Rows of compile_query(services_query(...)) as ServiceRows.

    NOTE: the rows are fetched with the DBAPI cursor under SQLAlchemy's pooled connection and built
    with tuple.__new__ straight from the driver's tuples: SQLAlchemy's Row objects cost a quarter of
    a 10,000-row read with mysqlclient, and at 100,000 rows anything per row counts.
    """
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    new = tuple.__new__
    return [new(ServiceRow, (cell, *row)) for row in rows]


def read_db_clock(conn: Connection) -> int:
    return int(conn.execute(sa.select(utc_now_us())).scalar_one())


@dataclass(frozen=True)
class CellMapping:
    uuid: str
    name: str | None
    database_connection: str
    disabled: bool


def read_cell_mappings(conn: Connection) -> list[CellMapping]:
    """Every cell, cell0 and disabled ones included, in Nova's order (by id)."""
    rows = conn.execute(
        sa.select(cell_mappings.c.uuid, cell_mappings.c.name, cell_mappings.c.database_connection,
                  cell_mappings.c.disabled).order_by(cell_mappings.c.id)
    ).all()
    return [CellMapping(u, n, c or "", bool(d)) for u, n, c, d in rows]


def read_host_zones(conn: Connection) -> dict[str, set[str]]:
    """host -> AZ names of the aggregates holding it, in one query (nova/availability_zones.py
    reads the same join through AggregateList.get_by_metadata_key('availability_zone'))."""
    q = (
        sa.select(aggregate_hosts.c.host, aggregate_metadata.c.value)
        .select_from(aggregate_hosts.join(aggregates, aggregates.c.id == aggregate_hosts.c.aggregate_id)
                     .join(aggregate_metadata, aggregate_metadata.c.aggregate_id == aggregates.c.id))
        .where(aggregate_metadata.c.key == "availability_zone")
    )
    zones: dict[str, set[str]] = {}
    for host, value in conn.execute(q):
        if host is not None:
            zones.setdefault(host, set()).add(value)
    return zones


def _parse_netloc(netloc: str) -> dict[str, str | None]:
    """user:pass@host:port of one member of a comma-separated netloc, split as Nova splits it
    (nova/objects/cell_mapping.py, _parse_netloc): raw text, no decoding, port kept as text."""
    parts: dict[str, str | None] = {"username": None, "password": None, "hostname": None, "port": None}
    userpass, hostport = netloc.split("@", 1) if "@" in netloc else ("", netloc)
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError("Invalid IPv6 URL")
        parts["hostname"], parts["port"] = hostport[1:end], hostport[end + 1:]
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
            "username": url.username, "password": url.password, "hostname": url.hostname,
            "port": url.port, "scheme": url.scheme, "query": url.query, "fragment": url.fragment,
            "path": url.path.lstrip("/"),
        }
        if "," in url.netloc:
            for index, netloc in enumerate(url.netloc.split(","), start=1):
                for key, value in _parse_netloc(netloc).items():
                    subs[f"{key}{index}"] = value
        return template.format(**subs)
    except Exception:  # NOTE: Nova logs and falls back to the raw string on any failure; so do we.
        return template


_PASSWORD_IN_URL = re.compile(r"(?P<head>://[^/@]*?:)(?P<secret>[^/]*)(?P<tail>@)")


def mask_url(url: str) -> str:
    """A database URL safe to show: the password (everything between user: and @) replaced by ***.
    Works on text that is not a valid URL too, since error messages must never carry the secret."""
    return _PASSWORD_IN_URL.sub(lambda m: m.group("head") + "***" + m.group("tail"), url)
