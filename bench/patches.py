"""Changes put into an exporter process by the benchmark, to measure them (never used otherwise).

"before": /metrics as it was before the fast writer (generate_latest over every family, gzip of
the whole body). The others are changes proposed outside bench/, measured before they are made.
"""
from __future__ import annotations

import gzip
import types

import sqlalchemy
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from exporter import engines, exposition, http
from exporter.collector import families


def _before_metrics(self, environ, start_response):
    snapshot = self.source.get(http.scrape_budget(environ, self.settings))
    body = exposition.render(families(snapshot, self.settings, self.clock(), self.driver))
    headers = [("Content-Type", CONTENT_TYPE_LATEST)]
    if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
        body = gzip.compress(body, compresslevel=http.GZIP_LEVEL)
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(body))))
    start_response("200 OK", headers)
    return [body]


def before() -> None:
    http.MetricsApp._metrics = _before_metrics


_ENGINE_OPTIONS: dict = {}


def _engines(**options) -> None:
    """engines.make_engine with these options too (and those of earlier calls), for MySQL URLs."""
    _ENGINE_OPTIONS.update(options)
    options = _ENGINE_OPTIONS
    proxy = types.SimpleNamespace(**{k: getattr(sqlalchemy, k) for k in dir(sqlalchemy) if not k.startswith("__")})

    def create_engine(url, **kwargs):
        if url.get_backend_name() != "mysql":
            return sqlalchemy.create_engine(url, **kwargs)
        kwargs.update(options)
        engine = sqlalchemy.create_engine(url, **kwargs)
        if kwargs.get("isolation_level") == "AUTOCOMMIT":
            # What reading through engine.raw_connection() would give: SQLAlchemy begins no
            # transaction, so it sends no ROLLBACK when the connection is closed.
            engine.dialect.do_rollback = lambda dbapi_connection: None
        return engine

    proxy.create_engine = create_engine
    engines.sa = proxy


def no_rollback() -> None:
    """No ROLLBACK round trip per database and reading. engines.py already makes MySQL engines
    AUTOCOMMIT with no reset on return, but SQLAlchemy's Connection still begins a transaction
    and, on close, has the driver send ROLLBACK: reading through engine.raw_connection() would not."""
    _engines(isolation_level="AUTOCOMMIT", pool_reset_on_return=None)


def no_ping() -> None:
    """No pool_pre_ping: no ping round trip per database (a dead pooled connection then fails one
    reading, unless the reader retries once)."""
    _engines(pool_pre_ping=False)


PATCHES = {"before": before, "no_rollback": no_rollback, "no_ping": no_ping}


def apply(names: list[str]) -> None:
    for name in names:
        PATCHES[name]()
