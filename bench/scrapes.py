"""The exporter measured from outside, as Prometheus sees it: HTTP scrapes, bytes, memory, queries."""

from __future__ import annotations

import gzip
import threading
import time

from prometheus_client.parser import text_string_to_metric_families

from .servers import SCRAPE_HEADERS, com_select, get, proc_status
from .stats import Stats


def scrape(port: int, gzipped: bool = True) -> bytes:
    headers = dict(SCRAPE_HEADERS) if gzipped else {"X-Prometheus-Scrape-Timeout-Seconds": "10"}
    status, response_headers, body = get(port, "/metrics", headers)
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    if gzipped and response_headers.get("Content-Encoding") != "gzip":
        raise RuntimeError("/metrics did not gzip")
    return body


def summary(text: str) -> dict:
    """What the exposition says: services listed, services up, databases down."""
    out = {"services": 0, "up": 0, "databases_down": 0}
    for family in text_string_to_metric_families(text):
        if family.name == "service_up":
            out["services"] = len(family.samples)
            out["up"] = int(sum(s.value for s in family.samples))
        elif family.name == "service_exporter_database_up":
            out["databases_down"] = sum(s.value == 0 for s in family.samples)
    return out


def concurrent_scrapes(port: int, count: int) -> list[float]:
    """`count` scrapes released at the same instant; each one's seconds."""
    barrier = threading.Barrier(count)
    seconds: list[float] = [0.0] * count
    errors: list[BaseException] = []

    def one(i: int):
        barrier.wait()
        started = time.perf_counter()
        try:
            scrape(port)
        except BaseException as exc:  # reported below, after every thread is done
            errors.append(exc)
        seconds[i] = time.perf_counter() - started

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return seconds


def paced(port: int, db, runs: int, gzipped: bool = True) -> tuple[Stats, int]:
    """Scrapes one at a time, each a full reading: the exporter lets a scrape that arrives within
    one reading's duration after the last reading share it, so each waits twice the longest scrape
    yet first (Prometheus' are seconds apart). Also returns how many still shared a reading (no
    SELECT reached the database), which should be 0."""
    seconds, shared = [], 0
    started = time.perf_counter()
    scrape(port, gzipped)  # warm-up, and the first measure of a reading's time
    longest = time.perf_counter() - started
    for _ in range(runs):
        time.sleep(max(0.05, 2 * longest))
        before = com_select(db)
        started = time.perf_counter()
        scrape(port, gzipped)
        took = time.perf_counter() - started
        shared += com_select(db) == before
        seconds.append(took)
        longest = max(longest, took)
    return Stats.of(seconds), shared


def pause_after(stats: Stats) -> None:
    """Long enough after the last scrape for the next one to make its own reading."""
    time.sleep(max(0.05, 2 * stats.max))


def measure_exporter(exporter, db, runs: int) -> dict:
    """Scrapes with and without gzip, sizes, what one scrape and ten concurrent ones cost the
    database (Com_select), and the process' peak RSS after all of it."""
    port = exporter.port
    plain = scrape(port, gzipped=False)  # also the first scrape: engines, schema detection
    zipped = scrape(port)
    out = {
        "bytes_plain": len(plain),
        "bytes_gzip": len(zipped),
        "exposition": summary(plain.decode()),
        "gzip_matches_plain": gzip.decompress(zipped).count(b"\n") == plain.count(b"\n"),
    }
    out["gzip"], out["shared_gzip"] = paced(port, db, runs)
    out["plain"], out["shared_plain"] = paced(port, db, runs, gzipped=False)

    pause_after(out["plain"])
    before = com_select(db)
    scrape(port)
    out["selects_one_scrape"] = com_select(db) - before
    pause_after(out["plain"])
    before = com_select(db)
    out["concurrent_seconds"] = concurrent_scrapes(port, 10)
    out["selects_ten_concurrent"] = com_select(db) - before
    status = proc_status(exporter.pid)
    out["peak_rss_kb"], out["rss_kb"], out["threads"], out["fds"] = (
        status["VmHWM"],
        status["VmRSS"],
        status["Threads"],
        status["fds"],
    )
    return out
