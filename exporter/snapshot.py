"""Reads the API database and every cell database, in parallel and within a deadline, into a Snapshot.

A failing database never raises out of here: it becomes a CellHealth with up=False and the reason.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable

import sqlalchemy as sa

from . import nova_db
from .config import Settings
from .engines import EngineCache
from .nova_db import CellMapping, mask_url
from .verdict import HeartbeatRule, ServiceRow, join_zones

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

    def _read_api(self) -> tuple[list[_Cell], dict[str, str]]:
        with self.engines.get(self.settings.api_database_connection).connect() as conn:
            mappings = nova_db.read_cell_mappings(conn)
            zones = {host: join_zones(names) for host, names in nova_db.read_host_zones(conn).items()}
        return self._cells_from(mappings), zones

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

    def _prepare(self, conn, url: str) -> _Prepared:
        prepared = self._prepared.get(url)
        if prepared is None:
            columns = nova_db.detect_columns(conn)
            query = nova_db.compile_query(nova_db.services_query(columns), conn)
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
        with self.engines.get(cell.url).connect() as conn:
            try:
                prepared = self._prepare(conn, cell.url)
                before = self.clock()
                db_now = nova_db.read_db_clock(conn)
                after = self.clock()
                rows = nova_db.read_services(conn, cell.label, prepared.query)
            except Exception:
                # The schema may have changed under us (an upgrade): detect the columns again next time.
                self._prepared.pop(cell.url, None)
                raise
        skew = ((before + after) / 2 - db_now) / 1e6
        return rows, prepared.rule, skew

    # -- one reading ---------------------------------------------------------------------------

    def read(self, timeout: float | None = None) -> Snapshot:
        """Everything the databases say now, within `timeout` seconds (default: twice query_timeout,
        once for the API database and once for the cells, which are read in parallel)."""
        budget = timeout if timeout is not None else 2 * self.settings.query_timeout
        deadline = time.monotonic() + budget
        api_health, cells, zones, zones_known = self._read_topology(deadline)
        self.engines.keep_only({c.url for c in cells} |
                               {self.settings.api_database_connection} - {None})
        self._prepared = {u: p for u, p in self._prepared.items() if u in {c.url for c in cells}}

        started = time.monotonic()
        futures = {c: self._pool.submit(self._read_cell, c) for c in cells}
        wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
        rows: list[ServiceRow] = []
        health: list[CellHealth] = []
        seen: set[tuple[str, str | None, str | None]] = set()
        for cell, future in futures.items():
            base = dict(cell=cell.label, uuid=cell.uuid, disabled=cell.disabled)
            if not future.done():
                future.cancel()
                health.append(CellHealth(up=False, duration=time.monotonic() - started,
                                         error=f"no answer within {budget:g}s", **base))
                continue
            result = future.result()
            if result.error is not None:
                health.append(CellHealth(up=False, duration=result.duration,
                                         error=describe(result.error), **base))
                LOG.warning("cell %r: %s", cell.label, describe(result.error))
                continue
            duplicates = 0
            for row in result.rows:
                key = (row.cell, row.binary, row.host)
                if key in seen:
                    duplicates += 1  # Nova's unique keys forbid this unless host or binary is NULL
                    continue
                seen.add(key)
                rows.append(row)
            health.append(CellHealth(up=True, duration=result.duration, skew=result.skew,
                                     duplicates=duplicates, rule=result.rule, **base))
        return Snapshot(now=self.clock(), rows=rows, cells=health, api=api_health,
                        host_zones=zones, zones_known=zones_known)

    def _read_topology(self, deadline: float):
        """Cells and zones from the API database; on failure the last ones known, or the local
        [database] connection alone before any API reading has worked."""
        if not self.settings.api_database_connection:
            return None, self._local_cell(), {}, False
        started = time.monotonic()
        future = self._pool.submit(self._read_api)
        # At most half of what is left: a hung API database must leave the cells time to answer.
        done, _ = wait([future], timeout=max(0.0, (deadline - started) / 2))
        duration = time.monotonic() - started
        if future in done and future.exception() is None:
            cells, zones = future.result()
            self._known_cells, self._known_zones = cells, zones
            return CellHealth(API_CELL, True, duration), cells, zones, True
        error = describe(future.exception()) if future in done else "no answer in time"
        future.cancel()
        LOG.warning("API database: %s", error)
        cells = self._known_cells if self._known_cells is not None else self._local_cell()
        return CellHealth(API_CELL, False, duration, error), cells, self._known_zones, False
