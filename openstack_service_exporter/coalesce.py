"""Single-flight access to the Reader: concurrent scrapes share one database round.

A scrape that arrives while a reading is under way (or within one reading's duration after it) waits
for that reading and shows it, instead of starting its own; so N simultaneous scrapes cost one query
per database, not N. With min_interval, a reading younger than that is reused outright (large clouds
scraped by several Prometheus servers). The client's scrape timeout sets the budget of the reading it
starts, but a reading cut short by a budget smaller than a scrape's own is never that scrape's answer.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from .reader import Reader
from .snapshot import DatabaseHealth, Reading, Snapshot
from .sources.base import Configured

# A reading given at least this share of a scrape's budget is as good as its own (two Prometheus
# servers with one scrape_timeout, the second of which arrived a few milliseconds later).
SHARE_TOLERANCE = 0.9


class _Reading:
    """One database round, shared by the scrapes that wait on it."""

    def __init__(self, budget: float):
        self.budget = budget
        self.done = threading.Event()
        self.snapshot: Snapshot | None = None
        self.finished = float("-inf")  # monotonic time it finished
        self.duration = 0.0

    def answer(self, budget: float) -> Snapshot | None:
        """The snapshot, when this reading serves a scrape with `budget` seconds (see serves)."""
        return self.snapshot if self.serves(budget) else None

    def serves(self, budget: float) -> bool:
        """Whether this reading may be the answer of a scrape with `budget` seconds: when every
        database answered, or when it had (nearly) as long as that scrape would give its own. So a
        client that asks for a tiny budget gets its own short reading, never everyone's."""
        if self.snapshot is None:
            return False
        return self.snapshot.ok or self.budget >= SHARE_TOLERANCE * budget


class SharedReader:
    def __init__(self, reader: Reader, min_interval: float = 0.0, share_recent: bool = True):
        self.reader = reader
        self.min_interval = min_interval
        self.share_recent = share_recent  # tests that change the databases between scrapes turn it off
        self._lock = threading.Lock()
        self._last: _Reading | None = None
        self._flight: _Reading | None = None  # the reading under way
        self._last_duration = 0.0
        # The sources and databases of the last reading, kept apart from its rows (for _timed_out).
        self._databases: list[tuple[Configured, list[DatabaseHealth]]] = []
        self.readings = 0  # how many real database rounds were made (for tests and the benchmark)

    def get(self, timeout: float | None = None) -> Snapshot:
        arrived = time.monotonic()
        budget = timeout if timeout is not None else 2 * self.reader.settings.query_timeout
        deadline = arrived + budget
        while True:
            with self._lock:
                # NOTE: a scrape that arrived while a reading was under way shows that reading, which
                # began up to one reading's duration before it arrived. One that arrives within a
                # reading's duration after it ended is no worse off, and sharing with it is what makes
                # the scrapes of two Prometheus servers, or ten at once, cost one database round.
                window = max(self.min_interval, self._last_duration if self.share_recent else 0.0)
                last = self._last
                if (
                    last is not None
                    and last.finished >= arrived - window
                    and (answer := last.answer(budget)) is not None
                ):
                    return answer
                flight = self._flight
                if flight is None:
                    self._flight = mine = _Reading(max(0.05, deadline - time.monotonic()))
                    self._last = None  # let the old rows go before the new ones arrive (100,000 rows: tens of MB)
                    break
            if not flight.done.wait(max(0.0, deadline - time.monotonic())):
                return self._timed_out(budget)
            if (answer := flight.answer(budget)) is not None:
                return answer
            # That reading was cut shorter than this scrape allows: this one reads again.
        return self._read(mine)

    def _read(self, mine: _Reading) -> Snapshot:
        started = time.monotonic()
        try:
            mine.snapshot = snapshot = self.reader.read(mine.budget)
            mine.finished = time.monotonic()
            mine.duration = mine.finished - started
        finally:
            with self._lock:
                self._flight = None
                if mine.snapshot is not None:
                    self.readings += 1
                    self._last, self._last_duration = mine, mine.duration
                    self._databases = [(r.source, r.databases) for r in mine.snapshot.readings]
            mine.done.set()
        return snapshot

    def _timed_out(self, budget: float) -> Snapshot:
        """The reading ahead of us outlived our own deadline: say so for every database we know."""
        why = f"no answer within {budget:g}s (an earlier reading is still running)"
        readings = [
            Reading(
                source,
                [],
                [replace(db, up=False, duration=budget, error=why, skew=None, duplicates=0) for db in databases],
            )
            for source, databases in self._databases
        ]
        return Snapshot(now=self.reader.clock(), readings=readings)
