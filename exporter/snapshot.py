"""Reads the API database and every cell database, in parallel and within a deadline, into a Snapshot.

A failing database never raises out of here: it becomes a CellHealth with up=False and the reason.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Callable

import sqlalchemy as sa

from . import nova_db
from .config import Settings
from .engines import EngineCache, dbapi_connection
from .nova_db import CellMapping, mask_url
from .verdict import HeartbeatRule, ServiceRow

LOG = logging.getLogger(__name__)

API_CELL = "(api_database)"  # the `cell` label of the API database's health series; no cell can be named so by accident


def wall_clock_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class CellHealth:
    cell: str                 # the `cell` label
    up: bool
    duration: float           # seconds spent on this database in this reading
    error: str | None = None  # why it is down; never contains a password
    uuid: str | None = None
    disabled: bool = False    # the cell mapping's own disabled flag (its services are still listed)
    skew: float | None = None  # exporter UTC clock minus the database server's, seconds
    duplicates: int = 0       # rows dropped because their (cell, binary, host) was already seen
    rule: HeartbeatRule = HeartbeatRule.LAST_SEEN_UP


@dataclass(frozen=True)
class Snapshot:
    now: int                          # exporter clock (µs since 1970, UTC) when the rows had arrived
    rows: list[ServiceRow]
    cells: list[CellHealth]
    api: CellHealth | None            # None when no API database is configured
    host_zones: dict[str, str] = field(default_factory=dict)
    zones_known: bool = False         # host_zones were read from the API database in this reading

    @property
    def rules(self) -> dict[str, HeartbeatRule]:
        return {c.cell: c.rule for c in self.cells}

    @property
    def ok(self) -> bool:
        return all(c.up for c in self.cells) and (self.api is None or self.api.up)


def describe(exc: BaseException) -> str:
    """One line about a database failure, without SQL text or secrets."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        text = f"{type(exc.orig).__name__}: {exc.orig}"
    elif isinstance(exc, TimeoutError):
        text = "timed out"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return mask_url(" ".join(text.split()))[:300]


@dataclass(frozen=True)
class _Cell:
    label: str
    url: str
    uuid: str | None = None
    disabled: bool = False


@dataclass(frozen=True)
class _CellResult:
    duration: float
    rows: list[ServiceRow] = field(default_factory=list)
    rule: HeartbeatRule = HeartbeatRule.LAST_SEEN_UP
    skew: float | None = None
    error: Exception | None = None


@dataclass(frozen=True)
class _Prepared:
    rule: HeartbeatRule
    query: str  # SQL text for this database's dialect


class Reader:
    """Reads snapshots for one nova.conf. No I/O at construction: it starts while databases are down."""

    def __init__(self, settings: Settings, clock: Callable[[], int] = wall_clock_us):
        self.settings = settings
        self.clock = clock
        self.engines = EngineCache(settings.query_timeout)
        self._pool = ThreadPoolExecutor(max_workers=settings.cell_concurrency + 1,
                                        thread_name_prefix="cell-reader")
        self._prepared: dict[str, _Prepared] = {}
        self._known_cells: list[_Cell] | None = None
        self._known_zones: dict[str, str] = {}
        # Engines do no I/O until used; making them now turns a bad URL or a missing driver into a
        # startup error instead of a silent 0.
        for url in filter(None, (settings.database_connection, settings.api_database_connection)):
            self.engines.get(url)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.engines.close()

    # -- the API database --------------------------------------------------------------------

    def _read_api(self, reads: "_CellReads") -> tuple[list[_Cell], dict[str, str]]:
        """Cell mappings, then zones; the cells are started between the two, so that they are read
        while the zones are."""
        engine = self.engines.get(self.settings.api_database_connection)
        with dbapi_connection(engine) as conn:
            cells = self._cells_from(nova_db.read_cell_mappings(conn, engine.dialect))
            self._known_cells = cells
            reads.start(cells)
            zones = nova_db.read_host_zones(conn, engine.dialect)
        return cells, zones

    def _cells_from(self, mappings: list[CellMapping]) -> list[_Cell]:
        names = [m.name for m in mappings]
        cells = []
        for m in mappings:
            # NOTE: names are not unique in Nova; a shared or missing name would merge two cells'
            # series, so such a cell is labelled by its uuid instead.
            label = m.name if m.name and names.count(m.name) == 1 else m.uuid
            url = nova_db.format_cell_url(m.database_connection, self.settings.database_connection)
            cells.append(_Cell(label, url, m.uuid, m.disabled))
        return cells

    def _local_cell(self) -> list[_Cell]:
        if not self.settings.database_connection:
            return []
        return [_Cell("", self.settings.database_connection)]

    # -- a cell database ---------------------------------------------------------------------

    def _prepare(self, conn, url: str, dialect) -> _Prepared:
        prepared = self._prepared.get(url)
        if prepared is None:
            columns = nova_db.detect_columns(conn, dialect)
            query = nova_db.sql_text(nova_db.services_query(columns), dialect)
            prepared = _Prepared(nova_db.heartbeat_rule(columns), query)
            self._prepared[url] = prepared
        return prepared

    def _read_cell(self, cell: _Cell) -> _CellResult:
        """Never raises: the outcome, the error or the rows, and how long it took."""
        started = time.monotonic()
        try:
            rows, rule, skew = self._query_cell(cell)
        except Exception as exc:
            return _CellResult(time.monotonic() - started, error=exc)
        return _CellResult(time.monotonic() - started, rows, rule, skew)

    def _query_cell(self, cell: _Cell) -> tuple[list[ServiceRow], HeartbeatRule, float]:
        engine = self.engines.get(cell.url)
        with dbapi_connection(engine) as conn:
            try:
                prepared = self._prepare(conn, cell.url, engine.dialect)
                rows = nova_db.read_services(conn, cell.label, prepared.query)
                # NOTE: the clock after the rows: PyMySQL keeps a connection's last result (every
                # row of it) until its next statement, and a pooled connection would hold the
                # cell's rows of one reading into the next, doubling the peak memory of a big cloud.
                before = self.clock()
                db_now = nova_db.read_db_clock(conn, engine.dialect)
                after = self.clock()
            except Exception:
                # The schema may have changed under us (an upgrade): detect the columns again next time.
                self._prepared.pop(cell.url, None)
                raise
        skew = ((before + after) / 2 - db_now) / 1e6
        return rows, prepared.rule, skew

    def _start_cells(self, cells: list[_Cell]) -> dict[_Cell, Future]:
        urls = {c.url for c in cells}
        self.engines.keep_only(urls | {self.settings.api_database_connection} - {None})
        self._prepared = {u: p for u, p in self._prepared.items() if u in urls}
        return {c: self._pool.submit(self._read_cell, c) for c in cells}

    # -- one reading ---------------------------------------------------------------------------

    def read(self, timeout: float | None = None) -> Snapshot:
        """Everything the databases say now, within `timeout` seconds (default: twice query_timeout,
        once for the API database and once for the cells, which are read in parallel)."""
        budget = timeout if timeout is not None else 2 * self.settings.query_timeout
        deadline = time.monotonic() + budget
        reads = _CellReads(self._start_cells)
        api_health, cells, zones, zones_known = self._read_topology(deadline, reads)
        reads.start(cells)  # unless the API database's reading has started them already

        wait(reads.futures.values(), timeout=max(0.0, deadline - time.monotonic()))
        rows: list[ServiceRow] = []
        health: list[CellHealth] = []
        seen: dict[str, set] = {}  # (binary, host) keys per cell label
        for cell, future in reads.futures.items():
            base = dict(cell=cell.label, uuid=cell.uuid, disabled=cell.disabled)
            if not future.done():
                future.cancel()
                health.append(CellHealth(up=False, duration=time.monotonic() - reads.started,
                                         error=f"no answer within {budget:g}s", **base))
                continue
            result = future.result()
            if result.error is not None:
                health.append(CellHealth(up=False, duration=result.duration,
                                         error=describe(result.error), **base))
                LOG.warning("cell %r: %s", cell.label, describe(result.error))
                continue
            duplicates = _append_unique(result.rows, seen.setdefault(cell.label, set()), rows)
            health.append(CellHealth(up=True, duration=result.duration, skew=result.skew,
                                     duplicates=duplicates, rule=result.rule, **base))
        return Snapshot(now=self.clock(), rows=rows, cells=health, api=api_health,
                        host_zones=zones, zones_known=zones_known)

    def _read_topology(self, deadline: float, reads: "_CellReads"):
        """Cells and zones from the API database; on failure the last ones known, or the local
        [database] connection alone before any API reading has worked."""
        if not self.settings.api_database_connection:
            return None, self._local_cell(), {}, False
        started = time.monotonic()
        future = self._pool.submit(self._read_api, reads)
        # At most half of what is left: a hung API database must leave the cells time to answer.
        done, _ = wait([future], timeout=max(0.0, (deadline - started) / 2))
        duration = time.monotonic() - started
        if future in done and future.exception() is None:
            cells, zones = future.result()
            self._known_zones = zones
            return CellHealth(API_CELL, True, duration), cells, zones, True
        error = describe(future.exception()) if future in done else "no answer in time"
        future.cancel()
        LOG.warning("API database: %s", error)
        cells = self._known_cells if self._known_cells is not None else self._local_cell()
        return CellHealth(API_CELL, False, duration, error), cells, self._known_zones, False


class _CellReads:
    """The cells of one reading, started once: by the API database's reading as soon as it has the
    cell mappings, or else by the reading itself with the last cells known."""

    def __init__(self, submit: Callable[[list[_Cell]], dict[_Cell, Future]]):
        self._submit = submit
        self._lock = threading.Lock()
        self.futures: dict[_Cell, Future] = {}
        self.started = 0.0
        self._done = False

    def start(self, cells: list[_Cell]) -> None:
        with self._lock:
            if not self._done:
                self._done, self.started = True, time.monotonic()
                self.futures = self._submit(cells)


_KEY = itemgetter(ServiceRow._fields.index("binary"), ServiceRow._fields.index("host"))


def _append_unique(new: list[ServiceRow], seen: set, out: list[ServiceRow]) -> int:
    """Appends to `out` the rows whose (binary, host) is not in `seen` yet; returns how many were not.

    Nova's unique keys forbid duplicates unless host or binary is NULL, so a cell is first checked
    whole (in C); row by row only when it does have one."""
    keys = list(map(_KEY, new))
    fresh = set(keys)
    if len(fresh) == len(keys) and seen.isdisjoint(fresh):
        seen |= fresh
        out += new
        return 0
    dropped = 0
    for key, row in zip(keys, new):
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        out.append(row)
    return dropped
