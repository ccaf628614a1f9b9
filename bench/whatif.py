"""python3 -m bench whatif: changes proposed outside bench/ measured before they are made, by
patching them into this process: a full in-process scrape (read + verdict + render + gzip) through
the WSGI app, and the statements it costs the database.

- rows: ServiceRow and Judged as plain slotted dataclasses instead of frozen ones (a frozen
  dataclass' __init__ sets each field through object.__setattr__: 14 calls per row);
- round trips: the engines with isolation_level AUTOCOMMIT and no reset on return (no ROLLBACK
  after each reading: the exporter only reads), and without pool_pre_ping (a dead pooled
  connection then fails the reading instead of being replaced; a retry would be needed).
"""
from __future__ import annotations

import contextlib
import dataclasses
import types

import sqlalchemy

from exporter import engines, nova_db, verdict
from exporter.coalesce import SharedReader
from exporter.http import MetricsApp
from exporter.snapshot import Reader, wall_clock_us

from .cloud import build, refresh
from .run import SIZES, settings_of
from .servers import free_port, tcp_url, write_conf
from .stats import timed

RUNS = {1000: 21, 10000: 15, 100000: 5}
ENVIRON = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "HTTP_ACCEPT_ENCODING": "gzip",
           "HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS": "10"}


def _unfrozen(cls):
    fields = [(f.name, f.type) for f in dataclasses.fields(cls)]
    return dataclasses.make_dataclass(cls.__name__, fields, slots=True, module=cls.__module__)


@contextlib.contextmanager
def plain_rows():
    saved = nova_db.ServiceRow, verdict.Judged
    nova_db.ServiceRow, verdict.Judged = _unfrozen(verdict.ServiceRow), _unfrozen(verdict.Judged)
    try:
        yield
    finally:
        nova_db.ServiceRow, verdict.Judged = saved


@contextlib.contextmanager
def engine_options(**extra):
    def create_engine(url, **kwargs):
        kwargs.update(extra)
        if kwargs.get("pool_pre_ping") is None:
            kwargs.pop("pool_pre_ping", None)
        return sqlalchemy.create_engine(url, **kwargs)

    saved = engines.sa
    engines.sa = types.SimpleNamespace(**{k: getattr(sqlalchemy, k) for k in dir(sqlalchemy) if not k.startswith("__")})
    engines.sa.create_engine = create_engine
    try:
        yield
    finally:
        engines.sa = saved


VARIANTS = {
    "as is": (),
    "rows: plain slotted dataclasses": (plain_rows,),
    "engines: AUTOCOMMIT, no reset on return": (lambda: engine_options(isolation_level="AUTOCOMMIT",
                                                                       pool_reset_on_return=None),),
    "engines: AUTOCOMMIT, no reset, no pre-ping": (lambda: engine_options(isolation_level="AUTOCOMMIT",
                                                                          pool_reset_on_return=None,
                                                                          pool_pre_ping=None),),
}
VARIANTS["all of the above"] = VARIANTS["rows: plain slotted dataclasses"] + \
    VARIANTS["engines: AUTOCOMMIT, no reset, no pre-ping"]


def _status(db) -> dict[str, int]:
    names = ("Com_select", "Com_rollback", "Com_admin_commands", "Questions")
    rows = db.execute("SHOW GLOBAL STATUS WHERE Variable_name IN (%s)" % ",".join(["%s"] * len(names)), names)
    return {k: int(v) for k, v in rows}


def measure(db, settings, runs: int) -> dict:
    out = {}
    for name, patches in VARIANTS.items():
        with contextlib.ExitStack() as stack:
            for patch in patches:
                stack.enter_context(patch())
            reader = Reader(settings)
            app = MetricsApp(SharedReader(reader), settings, wall_clock_us, "mysqldb")
            scrape = lambda: b"".join(app(dict(ENVIRON), lambda status, headers: None))  # noqa: E731
            try:
                scrape()
                before = _status(db)
                scrape()
                after = _status(db)
                out[name] = {"scrape": timed(scrape, runs, warmup=0),
                             "statements": {k: after[k] - before[k] for k in before}}
            finally:
                reader.close()
    return out


def whatif(db, workdir, sizes: list[int], log) -> dict:
    results = {}
    for size in sizes:
        cloud = build(db, size, SIZES[size], lambda name: tcp_url(db, name))
        refresh(db, cloud)
        conf = write_conf(workdir / f"whatif-{size}.conf", tcp_url(db, cloud.api_db), tcp_url(db, cloud.cell_dbs[0]),
                          free_port())
        results[str(size)] = measure(db, settings_of(conf), RUNS.get(size, 5))
        log(f"whatif at {size} done")
    return results
