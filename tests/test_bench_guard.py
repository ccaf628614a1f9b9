"""A guard against slowing down: on the same 1,000 services, a full scrape of the exporter must stay
faster than the naive stack (SQLAlchemy + PyMySQL + prometheus_client + gzip 6, bench/naive.py).

No wall-clock limit: both are timed in turn on the same machine, and only their ratio is judged
(medians of several runs), so a slow or busy machine slows both alike. bench/RESULTS.md has the
real figures; today the exporter is several times faster, so the margin is wide.
"""
from __future__ import annotations

import gzip
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bench.cloud import build  # noqa: E402
from bench.naive import NaiveExporter  # noqa: E402
from exporter.coalesce import SharedReader  # noqa: E402
from helpers import nova_settings  # noqa: E402
from exporter.engines import driver_name, parse_url  # noqa: E402
from exporter.http import MetricsApp  # noqa: E402
from exporter.reader import Reader, wall_clock_us  # noqa: E402

RUNS = 7
SERVICES = 1000


def wsgi_scrape(app: MetricsApp) -> bytes:
    """One /metrics request as Prometheus sends it, through the WSGI app in this process."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "HTTP_ACCEPT_ENCODING": "gzip",
               "HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS": "10"}
    status = []
    body = b"".join(app(environ, lambda s, headers: status.append(s)))
    assert status == ["200 OK"]
    return body


def test_scrape_stays_faster_than_the_naive_stack(mariadb):
    cloud = build(mariadb, SERVICES, 1, mariadb.url)
    settings = nova_settings(database_connection=mariadb.url(cloud.cell_dbs[0]),
                        api_database_connection=mariadb.url(cloud.api_db))
    reader = Reader(settings)
    shared = SharedReader(reader, share_recent=False)  # every timed scrape makes its own reading
    app = MetricsApp(shared, settings, wall_clock_us, driver_name(parse_url(mariadb.url("x"))))
    naive = NaiveExporter(mariadb.url(cloud.api_db))
    try:
        ours = gzip.decompress(wsgi_scrape(app))
        theirs = gzip.decompress(naive.scrape())
        # Both did the whole job: every service, in the first and the last per-service family.
        assert ours.count(b"\nservice_up{") == theirs.count(b"\nservice_up{") == SERVICES
        assert ours.count(b"\nservice_info{") == theirs.count(b"\nservice_info{") == SERVICES

        exporter_s, naive_s = [], []
        for _ in range(RUNS):  # in turn, so that a busy moment weighs on both
            started = time.perf_counter()
            wsgi_scrape(app)
            exporter_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            naive.scrape()
            naive_s.append(time.perf_counter() - started)
    finally:
        naive.close()
        reader.close()
    assert shared.readings == RUNS + 1  # each timed scrape read the databases
    ratio = statistics.median(naive_s) / statistics.median(exporter_s)
    assert ratio > 1.0, (f"the exporter's scrape ({statistics.median(exporter_s) * 1000:.1f} ms) is no longer "
                         f"faster than the naive stack's ({statistics.median(naive_s) * 1000:.1f} ms)")
