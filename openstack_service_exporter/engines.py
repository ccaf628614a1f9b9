"""One SQLAlchemy engine per database URL: bounded pools, timeouts on every socket, fastest driver.

Pools: at most POOL_SIZE connections per database (no overflow). A scrape needs one; the second
lets a new scrape proceed while a timed-out one is still waiting on its socket.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import ssl
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pymysql
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection, Dialect
from sqlalchemy.pool import ConnectionPoolEntry

from .config import ConfigError
from .masking import mask

POOL_SIZE = 2
RECYCLE_SECONDS = 3600  # below MariaDB's default wait_timeout of 8 hours, well clear of proxies' idle cuts


def have_mysqlclient() -> bool:
    return importlib.util.find_spec("MySQLdb") is not None


def parse_url(raw: str) -> URL:
    """A URL with the driver chosen: mysqlclient (C) when installed, else PyMySQL, for any MySQL URL.

    OpenStack's URLs say mysql+pymysql://; the C driver reads the same rows several times faster, and both
    return the same values for the columns read here.
    """
    try:
        url = sa.engine.make_url(raw)
    except Exception:
        # NOTE: SQLAlchemy's own message quotes the whole string, password included.
        raise ConfigError(mask(f"database URL {raw!r} cannot be parsed")) from None
    if url.get_backend_name() == "mysql" and url.get_driver_name() in ("pymysql", "mysqldb"):
        url = url.set(drivername="mysql+mysqldb" if have_mysqlclient() else "mysql+pymysql")
    return url


def driver_name(url: URL) -> str:
    """The DBAPI module's name as SQLAlchemy knows it (pymysql, mysqldb, pysqlite...), from the URL alone."""
    return url.drivername.partition("+")[2] or url.get_backend_name()


def make_engine(raw: str, timeout: float) -> Engine:
    url = parse_url(raw)
    backend = url.get_backend_name()
    driver = driver_name(url)
    kwargs: dict[str, Any] = {}
    if backend == "mysql":
        seconds = max(1, math.ceil(timeout))  # the C client takes whole seconds only
        connect_args = {"connect_timeout": seconds, "read_timeout": seconds, "write_timeout": seconds}
        # AUTOCOMMIT: every SELECT sees what is committed now and no transaction (with its read view)
        # stays open on a pooled connection; with no reset on return, a connection goes back to the
        # pool without a ROLLBACK round trip (see dbapi_connection).
        kwargs = dict(
            pool_size=POOL_SIZE,
            max_overflow=0,
            pool_timeout=timeout,
            pool_pre_ping=True,
            pool_recycle=RECYCLE_SECONDS,
            connect_args=connect_args,
            isolation_level="AUTOCOMMIT",
            pool_reset_on_return=None,
        )
    elif backend == "sqlite":
        kwargs = dict(connect_args={"timeout": timeout, "check_same_thread": False})
    try:
        engine = sa.create_engine(url, **kwargs)
    except ImportError as exc:
        raise ConfigError(mask(f"database URL {raw!r}: driver {driver!r} is not installed ({exc.name})")) from None
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise ConfigError(mask(f"database URL {raw!r}: {exc}")) from None
    if driver == "pymysql":
        sa.event.listen(engine, "do_connect", _connect_pymysql)
    return engine


def _connect_pymysql(
    dialect: Dialect, connection_record: ConnectionPoolEntry, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> pymysql.connections.Connection:
    return _SharedTLSContextConnection(*cargs, **cparams)


if TYPE_CHECKING:

    class _PyMySQLConnection(pymysql.connections.Connection):
        """PyMySQL's connection with its TLS context factory, private and left out of its stubs."""

        def _create_ssl_ctx(self, sslp: dict[str, Any] | ssl.SSLContext) -> ssl.SSLContext: ...

else:
    _PyMySQLConnection = pymysql.connections.Connection


class _SharedTLSContextConnection(_PyMySQLConnection):
    """PyMySQL's connection with TLS as PyMySQL sets it when no TLS option is given (PREFERRED:
    used when the server offers it, unverified), from one TLS context for every connection.

    NOTE: PyMySQL makes that context anew for each connection and loads the system's CA bundle into
    it (of no use with verification off): 0.8 MB per pooled connection, 44 MB at 50 cells
    (bench/ANALYSIS.md). The shared context is PyMySQL's own, made once; any TLS option given in
    the URL goes to PyMySQL unchanged.
    """

    _preferred: ssl.SSLContext | None = None
    _lock = threading.Lock()

    def _create_ssl_ctx(self, sslp: dict[str, Any] | ssl.SSLContext) -> ssl.SSLContext:
        if sslp != {}:
            return super()._create_ssl_ctx(sslp)
        with self._lock:
            if _SharedTLSContextConnection._preferred is None:
                _SharedTLSContextConnection._preferred = super()._create_ssl_ctx(sslp)
            return _SharedTLSContextConnection._preferred


@contextlib.contextmanager
def dbapi_connection(engine: Engine) -> Iterator[DBAPIConnection]:
    """The driver's own connection from the engine's pool (checked by pre-ping).

    NOTE: not SQLAlchemy's Connection: it begins a transaction even in AUTOCOMMIT and has the
    driver send ROLLBACK when it closes, one more round trip per database and reading. A connection
    on which anything failed (a timeout mid-result, a lost server) is thrown away, not pooled.
    """
    conn = engine.raw_connection()
    try:
        yield conn
    except BaseException:
        conn.invalidate()
        raise
    finally:
        conn.close()


class EngineCache:
    """Engines by URL, kept across scrapes; engines of URLs no longer wanted are disposed."""

    def __init__(self, timeout: float):
        self._timeout = timeout
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def get(self, raw: str) -> Engine:
        with self._lock:
            engine = self._engines.get(raw)
            if engine is None:
                engine = self._engines[raw] = make_engine(raw, self._timeout)
            return engine

    def keep_only(self, wanted: set[str]) -> None:
        with self._lock:
            for raw in list(self._engines):
                if raw not in wanted:
                    self._engines.pop(raw).dispose()

    def close(self) -> None:
        self.keep_only(set())
