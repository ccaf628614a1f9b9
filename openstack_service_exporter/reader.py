"""Reads every configured source's databases, all in parallel and within one budget, into a Snapshot.

The core of a reading; the sources decide what to read (sources/*), this module gives them the means:
engines with bounded pools, one pool of reader threads, a deadline, and the reading of one table
into rows with the server's clock and the failure as health. Nothing here raises for a database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NotRequired, Protocol, TypedDict, TypeVar, TypeVarTuple

from sqlalchemy.engine import Dialect
from sqlalchemy.engine.interfaces import DBAPIConnection

from .config import Settings
from .engines import EngineCache, dbapi_connection
from .snapshot import DatabaseHealth, Reading, Snapshot, describe
from .sql import detect_columns, fetch_all, read_db_clock, sql_text

if TYPE_CHECKING:
    from sqlalchemy.sql.expression import ClauseElement

LOG = logging.getLogger(__name__)

_T = TypeVar("_T")
_K = TypeVar("_K")
_Owner = TypeVar("_Owner", bound=Hashable)
_Args = TypeVarTuple("_Args")


def wall_clock_us() -> int:
    return time.time_ns() // 1000


class TableQuery(Protocol):
    """How a source reads its table from one database: a query prepared once per database (its
    columns detected), then its rows at every reading."""

    def prepare(self, conn: DBAPIConnection, dialect: Dialect) -> Any: ...

    def rows(self, conn: DBAPIConnection, prepared: Any, label: str) -> list[Any]: ...


@dataclass(frozen=True)
class TableResult:
    duration: float
    rows: list[Any] = field(default_factory=list)
    prepared: Any = None  # what the query prepared for its database (TableQuery.prepare)
    skew: float | None = None
    error: Exception | None = None


class ReadContext:
    """What a source reads with: engines by URL, the reader threads, the clock. Shared by every
    source of one exporter; no I/O at construction."""

    def __init__(self, settings: Settings, clock: Callable[[], int], workers: int):
        self.settings = settings
        self.clock = clock
        self.engines = EngineCache(settings.query_timeout)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="db-reader")
        self._prepared: dict[tuple[str, TableQuery], Any] = {}
        self._lock = threading.Lock()
        self._states: dict[Hashable, Any] = {}
        self._configured_urls = {url for source in settings.sources for url in source.urls()}
        self._wanted: dict[Hashable, set[str]] = {}

    def state(self, owner: _Owner, factory: Callable[[_Owner], _T]) -> _T:
        """What a source keeps from one reading to the next (e.g. the last cells known), made by
        factory(owner) at first use."""
        with self._lock:
            kept = self._states.get(owner)
            if kept is None:
                kept = self._states[owner] = factory(owner)
            return kept

    def keep_engines(self, owner: Hashable, urls: set[str]) -> None:
        """The databases `owner` found it must read now (e.g. the cells of a topology it read): the engines of those
        it no longer reads are disposed; configured databases are always kept."""
        with self._lock:
            self._wanted[owner] = set(urls)
            wanted = self._configured_urls.union(*self._wanted.values())
        self.engines.keep_only(wanted)

    def submit(self, fn: Callable[[*_Args], _T], *args: *_Args) -> Future[_T]:
        return self.pool.submit(fn, *args)

    def read_table(self, url: str, query: TableQuery, label: str) -> TableResult:
        """`query`'s rows from one database, with the server's clock; never raises."""
        started = time.monotonic()
        try:
            rows, prepared, skew = self._query(url, query, label)
        except Exception as exc:
            return TableResult(time.monotonic() - started, error=exc)
        return TableResult(time.monotonic() - started, rows, prepared, skew)

    def _query(self, url: str, query: TableQuery, label: str) -> tuple[list[Any], Any, float]:
        engine = self.engines.get(url)
        key = (url, query)
        with dbapi_connection(engine) as conn:
            try:
                prepared = self._prepared.get(key)
                if prepared is None:
                    prepared = self._prepared[key] = query.prepare(conn, engine.dialect)
                rows = query.rows(conn, prepared, label)
                # NOTE: the clock after the rows: PyMySQL keeps a connection's last result (every
                # row of it) until its next statement, and a pooled connection would hold the
                # rows of one reading into the next, doubling the peak memory of a big cloud.
                before = self.clock()
                db_now = read_db_clock(conn, engine.dialect)
                after = self.clock()
            except Exception:
                # The schema may have changed under us (an upgrade): detect the columns again next time.
                self._prepared.pop(key, None)
                raise
        return rows, prepared, ((before + after) / 2 - db_now) / 1e6

    def forget(self, keep_urls: set[str], query: TableQuery) -> None:
        """Drop what was prepared for `query` on databases no longer read."""
        with self._lock:
            self._prepared = {k: p for k, p in self._prepared.items() if k[1] is not query or k[0] in keep_urls}

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.engines.close()


class DatabaseNames(TypedDict):
    """The DatabaseHealth fields that name a database."""

    cell: str
    uuid: NotRequired[str | None]
    disabled: NotRequired[bool]


def gather(
    project: str,
    futures: dict[_K, Future[TableResult]],
    labels: Callable[[_K], DatabaseNames],
    deadline: float,
    budget: float,
    started: float,
) -> list[tuple[_K, DatabaseHealth, TableResult | None]]:
    """Waits until `deadline` for the table reads in `futures` (key -> Future of TableResult) and
    says, for each key, the health of its database and its result (None when it failed or is late).
    `labels(key)` gives the DatabaseHealth fields that name the database (cell, uuid, disabled)."""
    wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
    out: list[tuple[_K, DatabaseHealth, TableResult | None]] = []
    for key, future in futures.items():
        names = labels(key)
        if not future.done():
            future.cancel()
            out.append(
                (
                    key,
                    DatabaseHealth(
                        project,
                        up=False,
                        duration=time.monotonic() - started,
                        error=f"no answer within {budget:g}s",
                        **names,
                    ),
                    None,
                )
            )
            continue
        result = future.result()
        if result.error is not None:
            why = describe(result.error)
            LOG.warning("%s database %r: %s", project, names.get("cell", ""), why)
            out.append((key, DatabaseHealth(project, up=False, duration=result.duration, error=why, **names), None))
            continue
        out.append((key, DatabaseHealth(project, up=True, duration=result.duration, skew=result.skew, **names), result))
    return out


class Reader:
    """Reads snapshots of every configured source. No I/O at construction: it starts while
    databases are down."""

    def __init__(self, settings: Settings, clock: Callable[[], int] = wall_clock_us):
        self.settings = settings
        self.clock = clock
        self.sources = list(settings.sources)
        self.context = ReadContext(settings, clock, settings.cell_concurrency + 1)
        # One thread per source beyond the first, which reads in the scrape's own thread.
        self._sources_pool = ThreadPoolExecutor(
            max_workers=max(1, len(self.sources) - 1), thread_name_prefix="source-reader"
        )
        # Engines do no I/O until used; making them now turns a bad URL or a missing driver into a
        # startup error instead of a silent 0.
        for source in self.sources:
            for url in source.urls():
                self.context.engines.get(url)

    @property
    def engines(self) -> EngineCache:
        return self.context.engines

    def close(self) -> None:
        self._sources_pool.shutdown(wait=False, cancel_futures=True)
        self.context.close()

    def read(self, timeout: float | None = None) -> Snapshot:
        """Everything the databases say now, within `timeout` seconds (default: twice query_timeout:
        a source may read in two rounds, e.g. a topology database, then the databases it names, in parallel)."""
        budget = timeout if timeout is not None else 2 * self.settings.query_timeout
        deadline = time.monotonic() + budget
        first, others = (self.sources[0], self.sources[1:]) if self.sources else (None, [])
        futures = [self._sources_pool.submit(s.read, self.context, deadline, budget) for s in others]
        readings = [first.read(self.context, deadline, budget)] if first is not None else []
        wait(futures, timeout=max(0.0, deadline - time.monotonic()) + 1.0)
        for source, future in zip(others, futures):
            # a source that overran its deadline: nothing of it is shown, and that is said
            if not future.done():
                why = f"no answer within {budget:g}s"
            elif (failure := future.exception()) is None:
                readings.append(future.result())
                continue
            else:
                why = describe(failure)
            readings.append(Reading(source, [], [DatabaseHealth(source.source.project, "", False, budget, why)]))
        return Snapshot(now=self.clock(), readings=readings)


def read_one(
    ctx: ReadContext, project: str, url: str, query: TableQuery, deadline: float, budget: float
) -> tuple[DatabaseHealth, TableResult | None]:
    """A project with one database (cell label ""): its health, and its rows when it answered."""
    started = time.monotonic()
    future = ctx.submit(ctx.read_table, url, query, "")
    ((_, health, result),) = gather(project, {url: future}, lambda _: {"cell": ""}, deadline, budget, started)
    return health, result


class OneTableQuery:
    """A TableQuery of one table: its columns detected once per database, a query built for them, and
    each row made by `row` (a NamedTuple's _make, or any function of the fetched tuple)."""

    def __init__(
        self, table: str, build: Callable[[frozenset[str]], ClauseElement], row: Callable[[tuple[Any, ...]], Any]
    ):
        self.table, self.build, self.row = table, build, row

    def prepare(self, conn: DBAPIConnection, dialect: Dialect) -> str:
        return sql_text(self.build(detect_columns(conn, dialect, self.table)), dialect)

    def rows(self, conn: DBAPIConnection, prepared: str, label: str) -> list[Any]:
        return list(map(self.row, fetch_all(conn, prepared)))
