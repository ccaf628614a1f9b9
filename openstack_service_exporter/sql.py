"""SQL that every source shares: server-side time conversion, query text per dialect, a cursor's rows,
a table's columns and the database server's clock."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, FunctionElement

# A SELECT of any columns (SQLAlchemy types a Select by the types of its columns).
Query: TypeAlias = "sa.Select[*tuple[Any, ...]]"


class epoch_us(FunctionElement[int]):
    """A naive-UTC DATETIME as integer microseconds since 1970, computed by the server.

    Integers cross the wire and the driver far cheaper than DATETIME objects, and stay exact.
    TIMESTAMPDIFF on DATETIME values ignores the session time zone, which is what naive UTC needs.
    A zero date ('0000-00-00') comes back NULL: it is no heartbeat.
    """

    type = sa.BigInteger()
    inherit_cache = True


@compiles(epoch_us, "mysql")
def _epoch_us_mysql(element: FunctionElement[int], compiler: SQLCompiler, **kw: Any) -> str:
    return f"TIMESTAMPDIFF(MICROSECOND, '1970-01-01', {compiler.process(element.clauses, **kw)})"


@compiles(epoch_us, "sqlite")
def _epoch_us_sqlite(element: FunctionElement[int], compiler: SQLCompiler, **kw: Any) -> str:
    col = compiler.process(element.clauses, **kw)
    # strftime('%s') is whole seconds; '%f' is SS.SSS, so milliseconds are kept.
    return (
        f"(CAST(strftime('%s', {col}) AS INTEGER) * 1000000 + CAST(substr(strftime('%f', {col}), 4) AS INTEGER) * 1000)"
    )


@compiles(epoch_us)
def _epoch_us_default(element: FunctionElement[int], compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) * 1000000 AS BIGINT)"


class utc_now_us(FunctionElement[int]):
    """The database server's own UTC clock, in microseconds since 1970."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(utc_now_us, "mysql")
def _now_mysql(element: FunctionElement[int], compiler: SQLCompiler, **kw: Any) -> str:
    return "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6))"


@compiles(utc_now_us, "sqlite")
def _now_sqlite(element: FunctionElement[int], compiler: SQLCompiler, **kw: Any) -> str:
    return (
        "(CAST(strftime('%s', 'now') AS INTEGER) * 1000000 + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000)"
    )


@compiles(utc_now_us)
def _now_default(element: FunctionElement[int], compiler: SQLCompiler, **kw: Any) -> str:
    return "CAST(EXTRACT(EPOCH FROM CURRENT_TIMESTAMP) * 1000000 AS BIGINT)"


@lru_cache(maxsize=256)  # the fixed queries of the sources, once per engine's dialect
def sql_text(query: ClauseElement, dialect: Dialect) -> str:
    """A query as this database's SQL text, its few constants inlined (no parameters to bind): it
    is sent through the driver's own cursor, without SQLAlchemy's Connection (whose transaction
    handling costs a ROLLBACK round trip per database and reading, even in AUTOCOMMIT)."""
    return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def fetch_all(conn: DBAPIConnection, sql: str) -> Sequence[tuple[Any, ...]]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


@cache
def _no_rows(table: str) -> Query:
    return sa.select(sa.text("*")).select_from(sa.table(table)).limit(0)


def detect_columns(conn: DBAPIConnection, dialect: Dialect, table: str) -> frozenset[str]:
    """The columns of `table` as this database has them (an empty SELECT: no information_schema,
    so it works for a user with SELECT on that table alone)."""
    cursor = conn.cursor()
    try:
        cursor.execute(sql_text(_no_rows(table), dialect))
        columns = frozenset(d[0].lower() for d in cursor.description)
        cursor.fetchall()
        return columns
    finally:
        cursor.close()


def require_columns(table: str, columns: frozenset[str], required: Sequence[str], what: str) -> None:
    """A failed reading, said as such, when `table` lacks a column the rule needs: `what` the
    database then is not (e.g. "a <project> database")."""
    missing = [c for c in required if c not in columns]
    if missing:
        raise sa.exc.NoSuchColumnError(f"table {table} lacks {', '.join(missing)}: not {what}")


_CLOCK = sa.select(utc_now_us())


def read_db_clock(conn: DBAPIConnection, dialect: Dialect) -> int:
    return int(fetch_all(conn, sql_text(_CLOCK, dialect))[0][0])
