"""Single-flight access to the Reader: concurrent scrapes share one database round.

A scrape that arrives while a reading is under way (or within one reading's duration after it) waits
for that reading and shows it, instead of starting its own; so N simultaneous scrapes cost one query
per database, not N. With min_interval, a reading younger than that is reused outright (large clouds
scraped by several Prometheus servers).
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace

from .reader import Reader
from .snapshot import DatabaseHealth, Reading, Snapshot


class SharedReader:
    def __init__(self, reader: Reader, min_interval: float = 0.0, share_recent: bool = True):
        self.reader = reader
        self.min_interval = min_interval
        self.share_recent = share_recent  # tests that change the databases between scrapes turn it off
        self._lock = threading.Lock()
        self._last: Snapshot | None = None
        self._last_done = float("-inf")  # monotonic time the last reading finished
        self._last_duration = 0.0
        # The sources and databases of the last reading, kept apart from its rows (for _timed_out).
        self._databases: list[tuple[object, list[DatabaseHealth]]] = []
        self.readings = 0  # how many real database rounds were made (for tests and the benchmark)

    def get(self, timeout: float | None = None) -> Snapshot:
        arrived = time.monotonic()
        budget = timeout if timeout is not None else 2 * self.reader.settings.query_timeout
        if not self._lock.acquire(timeout=budget):
            return self._timed_out(budget)
        try:
            # NOTE: a scrape that arrived while a reading was under way shows that reading, which
            # began up to one reading's duration before it arrived. One that arrives within a
            # reading's duration after it ended is no worse off, and sharing with it is what makes
            # the scrapes of two Prometheus servers, or ten at once, cost one database round.
            window = max(self.min_interval, self._last_duration if self.share_recent else 0.0)
            if self._last is not None and self._last_done >= arrived - window:
                return self._last
            remaining = max(0.05, budget - (time.monotonic() - arrived))
            started = time.monotonic()
            self._last = None  # let the old rows go before the new ones arrive (100,000 rows: tens of MB)
            snapshot = self.reader.read(remaining)
            self.readings += 1
            self._last, self._last_done = snapshot, time.monotonic()
            self._databases = [(r.source, r.databases) for r in snapshot.readings]
            self._last_duration = self._last_done - started
            return snapshot
        finally:
            self._lock.release()

    def _timed_out(self, budget: float) -> Snapshot:
        """The reading ahead of us outlived our own deadline: say so for every database we know."""
        why = f"no answer within {budget:g}s (an earlier reading is still running)"
        readings = [Reading(source, [], [replace(db, up=False, duration=budget, error=why, skew=None, duplicates=0)
                                          for db in databases])
                    for source, databases in self._databases]
        return Snapshot(now=self.reader.clock(), readings=readings)
