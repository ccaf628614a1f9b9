"""Repeated timings and their summary: median and spread."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Stats:
    runs: int
    median: float  # seconds
    p10: float
    p90: float
    min: float
    max: float

    @classmethod
    def of(cls, seconds: list[float]) -> Stats:
        ordered = sorted(seconds)
        if len(ordered) == 1:
            only = ordered[0]
            return cls(1, only, only, only, only, only)
        deciles = statistics.quantiles(ordered, n=10, method="inclusive")
        return cls(len(ordered), statistics.median(ordered), deciles[0], deciles[-1], ordered[0], ordered[-1])

    def ms(self) -> str:
        """'median (p10-p90, min-max) ms' for the tables."""
        return (
            f"{self.median * 1000:.1f} ({self.p10 * 1000:.1f}–{self.p90 * 1000:.1f}; "
            f"{self.min * 1000:.1f}–{self.max * 1000:.1f})"
        )


def timed(fn: Callable[[], object], runs: int, warmup: int = 1) -> Stats:
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - started)
    return Stats.of(seconds)
