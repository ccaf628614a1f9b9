"""A guard against slowing down: on the same 1,000 services, a full scrape of the exporter (over its
HTTP server on loopback) must stay faster than the naive stack (SQLAlchemy + PyMySQL + prometheus_client
+ gzip 6, bench/naive.py).

No wall-clock limit: both are timed in turn on the same machine, and only their ratio is judged
(medians of several runs), so a slow or busy machine slows both alike. bench/RESULTS.md has the
real figures; today the exporter is several times faster, so the margin is wide.
"""

from __future__ import annotations

import gzip
import http.client
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from helpers import (
    nova_settings,  # noqa: E402
    serve_in_thread,  # noqa: E402
)

from bench.cloud import build  # noqa: E402
from bench.naive import NaiveExporter  # noqa: E402
from openstack_service_exporter.coalesce import SharedReader  # noqa: E402
from openstack_service_exporter.engines import driver_name, parse_url  # noqa: E402
from openstack_service_exporter.http import MetricsApp, make_http_server  # noqa: E402
from openstack_service_exporter.reader import Reader, wall_clock_us  # noqa: E402

RUNS = 7
SERVICES = 1000


def http_scrape(port: int) -> bytes:
    """One /metrics request as Prometheus sends it, over loopback to the app served in this process."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(
            "GET", "/metrics", headers={"Accept-Encoding": "gzip", "X-Prometheus-Scrape-Timeout-Seconds": "10"}
        )
        response = conn.getresponse()
        assert response.status == 200
        return response.read()
    finally:
        conn.close()


def test_scrape_stays_faster_than_the_naive_stack(mariadb):
    cloud = build(mariadb, SERVICES, 1, mariadb.url)
    settings = nova_settings(
        database_connection=mariadb.url(cloud.cell_dbs[0]), api_database_connection=mariadb.url(cloud.api_db)
    )
    reader = Reader(settings)
    shared = SharedReader(reader, share_recent=False)  # every timed scrape makes its own reading
    app = MetricsApp(shared, settings, wall_clock_us, driver_name(parse_url(mariadb.url("x"))))
    naive = NaiveExporter(mariadb.url(cloud.api_db))
    server = make_http_server(app, "127.0.0.1", 0)
    serve_in_thread(server)
    port = server.server_address[1]
    try:
        ours = gzip.decompress(http_scrape(port))
        theirs = gzip.decompress(naive.scrape())
        # Both did the whole job: every service, in the first and the last per-service family.
        assert ours.count(b"\nservice_up{") == theirs.count(b"\nservice_up{") == SERVICES
        assert ours.count(b"\nservice_info{") == theirs.count(b"\nservice_info{") == SERVICES

        exporter_s, naive_s = [], []
        for _ in range(RUNS):  # in turn, so that a busy moment weighs on both
            started = time.perf_counter()
            http_scrape(port)
            exporter_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            naive.scrape()
            naive_s.append(time.perf_counter() - started)
    finally:
        server.shutdown()
        server.server_close()
        app.close()
        naive.close()
        reader.close()
    assert shared.readings == RUNS + 1  # each timed scrape read the databases
    ratio = statistics.median(naive_s) / statistics.median(exporter_s)
    assert ratio > 1.0, (
        f"the exporter's scrape ({statistics.median(exporter_s) * 1000:.1f} ms) is no longer "
        f"faster than the naive stack's ({statistics.median(naive_s) * 1000:.1f} ms)"
    )
