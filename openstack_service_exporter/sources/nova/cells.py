"""One reading of Nova: the API database (cell mappings, then zones), and every cell database in
parallel, started as soon as the cell mappings are known."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import TYPE_CHECKING

from sqlalchemy.engine import Dialect
from sqlalchemy.engine.interfaces import DBAPIConnection

from ...engines import dbapi_connection
from ...reader import DatabaseNames, ReadContext, TableResult, gather
from ...snapshot import DatabaseHealth, Reading, describe
from ...sql import sql_text
from . import heartbeats, tables
from .tables import CellMapping
from .verdict import PROJECT, HeartbeatRule, ServiceRow

if TYPE_CHECKING:
    from .source import NovaConfig

LOG = logging.getLogger(__name__)

API_CELL = "(api_database)"  # the `cell` label of the API database's health series; no cell can be named so by accident


@dataclass(frozen=True)
class NovaContext:
    """What Nova's rule needs besides the rows."""

    rules: dict[str, HeartbeatRule] = field(default_factory=dict)  # per cell label: the schema's age
    host_zones: dict[str, str] = field(default_factory=dict)
    zones_known: bool = False  # host_zones were read from the API database in this reading
    heartbeats: dict[str, int | None] | None = None  # servicegroup_driver = mc: cache key -> cached time


@dataclass(frozen=True)
class Cell:
    label: str
    url: str
    uuid: str | None = None
    disabled: bool = False


class ServicesQuery:
    """A cell's `services` table: columns detected once per database (tables of any age since
    Icehouse), then one query per reading."""

    def prepare(self, conn: DBAPIConnection, dialect: Dialect) -> tuple[HeartbeatRule, str]:
        columns = tables.detect_columns(conn, dialect)
        return tables.heartbeat_rule(columns), sql_text(tables.services_query(columns), dialect)

    def rows(self, conn: DBAPIConnection, prepared: tuple[HeartbeatRule, str], label: str) -> list[ServiceRow]:
        return tables.read_services(conn, label, prepared[1])


SERVICES = ServicesQuery()


class Topology:
    """The cells and zones last known, kept across readings for when the API database fails."""

    def __init__(self, config: NovaConfig):
        self.config = config
        self.cells: list[Cell] | None = None
        self.zones: dict[str, str] = {}

    def cells_from(self, mappings: list[CellMapping]) -> list[Cell]:
        names = [m.name for m in mappings]
        cells = []
        for m in mappings:
            # NOTE: names are not unique in Nova; a shared or missing name would merge two cells'
            # series, so such a cell is labelled by its uuid instead.
            label = m.name if m.name and names.count(m.name) == 1 else m.uuid
            url = tables.format_cell_url(m.database_connection, self.config.database_connection)
            cells.append(Cell(label, url, m.uuid, m.disabled))
        return cells

    def local_cell(self) -> list[Cell]:
        if not self.config.database_connection:
            return []
        return [Cell("", self.config.database_connection)]


class CellReads:
    """The cells of one reading, started once: by the API database's reading as soon as it has the
    cell mappings, or else by the reading itself with the last cells known."""

    def __init__(self, submit: Callable[[list[Cell]], dict[Cell, Future[TableResult]]]):
        self._submit = submit
        self._lock = threading.Lock()
        self.futures: dict[Cell, Future[TableResult]] = {}
        self.started = 0.0
        self._done = False

    def start(self, cells: list[Cell]) -> None:
        with self._lock:
            if not self._done:
                self._done, self.started = True, time.monotonic()
                self.futures = self._submit(cells)


def read(config: NovaConfig, ctx: ReadContext, deadline: float, budget: float) -> Reading:
    topology: Topology = ctx.state(config, Topology)

    def start_cells(cells: list[Cell]) -> dict[Cell, Future[TableResult]]:
        urls = {c.url for c in cells}
        ctx.keep_engines(config, urls)
        ctx.forget(urls, SERVICES)
        return {c: ctx.submit(ctx.read_table, c.url, SERVICES, c.label) for c in cells}

    reads = CellReads(start_cells)
    api_health, cells, zones, zones_known = _read_topology(config, ctx, topology, deadline, reads)
    reads.start(cells)  # unless the API database's reading has started them already

    rows: list[ServiceRow] = []
    health: list[DatabaseHealth] = []
    rules: dict[str, HeartbeatRule] = {}
    seen: dict[str, set[_Key]] = {}  # (binary, host) keys per cell label
    names: Callable[[Cell], DatabaseNames] = lambda cell: {  # noqa: E731
        "cell": cell.label,
        "uuid": cell.uuid,
        "disabled": cell.disabled,
    }
    cache = config.heartbeats
    cells_deadline = deadline if cache is None else heartbeats.cells_deadline(deadline, ctx.settings.query_timeout)
    for cell, db, result in gather(PROJECT, reads.futures, names, cells_deadline, budget, reads.started):
        if result is not None:
            db = _replace_duplicates(db, _append_unique(result.rows, seen.setdefault(cell.label, set()), rows))
            rules[cell.label] = result.prepared[0]
        health.append(db)
    if api_health is not None:
        health.append(api_health)
    beats = None
    if cache is not None:
        cache_health, beats = cache.read(ctx, rows, deadline, ctx.settings.query_timeout)
        health.append(cache_health)
        if beats is None:  # no heartbeats, no verdict: the rows go, as a failed cell's do
            rows = []
    return Reading(config, rows, health, NovaContext(rules, zones, zones_known, beats))


def _replace_duplicates(db: DatabaseHealth, duplicates: int) -> DatabaseHealth:
    return replace(db, duplicates=duplicates) if duplicates else db


def _read_api(url: str, ctx: ReadContext, topology: Topology, reads: CellReads) -> tuple[list[Cell], dict[str, str]]:
    """Cell mappings, then zones (from the API database at `url`); the cells are started between the
    two, so that they are read while the zones are."""
    engine = ctx.engines.get(url)
    with dbapi_connection(engine) as conn:
        cells = topology.cells_from(tables.read_cell_mappings(conn, engine.dialect))
        topology.cells = cells
        reads.start(cells)
        zones = tables.read_host_zones(conn, engine.dialect)
    return cells, zones


def _read_topology(
    config: NovaConfig, ctx: ReadContext, topology: Topology, deadline: float, reads: CellReads
) -> tuple[DatabaseHealth | None, list[Cell], dict[str, str], bool]:
    """Cells and zones from the API database; on failure the last ones known, or the local
    [database] connection alone before any API reading has worked."""
    url = config.api_database_connection
    if not url:
        return None, topology.local_cell(), {}, False
    started = time.monotonic()
    future = ctx.submit(_read_api, url, ctx, topology, reads)
    # At most half of what is left: a hung API database must leave the cells time to answer.
    done, _ = wait([future], timeout=max(0.0, (deadline - started) / 2))
    duration = time.monotonic() - started
    failure = future.exception() if future in done else None
    if future in done and failure is None:
        cells, zones = future.result()
        topology.zones = zones
        return DatabaseHealth(PROJECT, API_CELL, True, duration, lists_services=False), cells, zones, True
    error = describe(failure) if failure is not None else "no answer in time"
    future.cancel()
    LOG.warning("API database: %s", error)
    cells = topology.cells if topology.cells is not None else topology.local_cell()
    return DatabaseHealth(PROJECT, API_CELL, False, duration, error, lists_services=False), cells, topology.zones, False


_KEY = itemgetter(ServiceRow._fields.index("binary"), ServiceRow._fields.index("host"))
_Key = tuple[str | None, str | None]  # a row's (binary, host)


def _append_unique(new: list[ServiceRow], seen: set[_Key], out: list[ServiceRow]) -> int:
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
