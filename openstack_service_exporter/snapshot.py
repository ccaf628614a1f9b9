"""What one reading found: the rows of every source and the health of every database it read.

Plain data, made by reader.py and the sources, read by every output. A failing database never raises
out of a reading: it becomes a DatabaseHealth with up=False and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .masking import mask

if TYPE_CHECKING:
    from .sources.base import Configured


@dataclass(frozen=True)
class DatabaseHealth:
    project: str
    cell: str  # the `cell` label: a cell's name, a marker such as "(api_database)", or ""
    up: bool
    duration: float  # seconds spent on this database in this reading
    error: str | None = None  # why it is down; never contains a password
    uuid: str | None = None
    disabled: bool = False  # a cell mapping's own disabled flag (its services are still listed)
    skew: float | None = None  # exporter UTC clock minus the database server's, seconds
    duplicates: int = 0  # rows not shown because another row had the same (binary, host)
    lists_services: bool = True  # False for a database read for something else (topology, a cache, a counter)


@dataclass(frozen=True)
class Reading:
    """One source's part of a reading."""

    source: Configured
    rows: list[Any]  # the project's own rows (its NamedTuples)
    databases: list[DatabaseHealth]
    context: Any = None  # what the project's rule needs besides the rows
    partial: dict[str, bool] = field(default_factory=dict)  # reason -> whether the answer lacks that part

    @property
    def project(self) -> str:
        return self.source.source.project


@dataclass(frozen=True)
class Snapshot:
    now: int  # exporter clock (µs since 1970, UTC) when the rows had arrived
    readings: list[Reading]

    @property
    def databases(self) -> list[DatabaseHealth]:
        return [db for reading in self.readings for db in reading.databases]

    @property
    def ok(self) -> bool:
        return all(db.up for db in self.databases)


def describe(exc: BaseException) -> str:
    """One line about a database failure, without SQL text or secrets."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        text = f"{type(exc.orig).__name__}: {exc.orig}"
    elif isinstance(exc, TimeoutError):
        text = "timed out"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return mask(" ".join(text.split()))[:300]
