"""Helpers shared by the tests: run the CLI in-process, serve the app on a free port, parse expositions."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import gzip
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from mariadb import free_port  # noqa: F401  (shared with the tests that import it from here)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from openstack_service_exporter.cli import main
from openstack_service_exporter.coalesce import SharedReader
from openstack_service_exporter.collector import families
from openstack_service_exporter.config import Settings
from openstack_service_exporter.http import HTTPServer, MetricsApp, make_http_server
from openstack_service_exporter.reader import Reader
from openstack_service_exporter.snapshot import DatabaseHealth, Reading, Snapshot
from openstack_service_exporter.sources.nova import NovaConfig
from openstack_service_exporter.sources.nova.cells import API_CELL, NovaContext  # noqa: F401  (API_CELL: for the tests)
from openstack_service_exporter.sources.nova.verdict import HeartbeatRule

EPOCH = datetime.datetime(1970, 1, 1)


class SnapshotCollector(Collector):
    """The exporter's families for a CollectorRegistry, the reference the fast writer is compared with:
    every collect() takes a snapshot (through `get_snapshot`) and builds every family anew."""

    def __init__(self, get_snapshot: Callable[[], Snapshot], settings: Settings, clock: Callable[[], int], driver: str):
        self._get_snapshot = get_snapshot
        self._settings = settings
        self._clock = clock
        self._driver = driver

    def collect(self):
        return families(self._get_snapshot(), self._settings, self._clock(), self._driver)


def serve_in_thread(server: HTTPServer) -> threading.Thread:
    """The server's loop in a daemon thread (the command line serves in its main thread)."""
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return thread


def seconds(n: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=n)


def to_us(moment: datetime.datetime) -> int:
    return (moment - EPOCH) // datetime.timedelta(microseconds=1)


_NOVA_FIELDS = {f.name for f in dataclasses.fields(NovaConfig)}


def nova_settings(**options) -> Settings:
    """Settings with Nova as the one source: Nova's options (NovaConfig's fields) and the
    exporter's, by name."""
    nova = {k: options.pop(k) for k in list(options) if k in _NOVA_FIELDS}
    return Settings(sources=(NovaConfig(**nova),), **options)


# A Nova database's health, as the Nova source reports it.
CellHealth = functools.partial(DatabaseHealth, "nova")


def nova_snapshot(
    now: int,
    rows: list,
    cells: list[DatabaseHealth],
    api: DatabaseHealth | None = None,
    host_zones: dict | None = None,
    zones_known: bool = False,
    config: NovaConfig | None = None,
    rules: dict | None = None,
) -> Snapshot:
    """A snapshot of Nova alone, as cells.read makes it: the cells' health, then the API database's."""
    rules = rules or {c.cell: HeartbeatRule.LAST_SEEN_UP for c in cells if c.up}
    context = NovaContext(rules, host_zones or {}, zones_known)
    databases = cells + ([dataclasses.replace(api, lists_services=False)] if api else [])  # as cells.read says it
    return Snapshot(now=now, readings=[Reading(config or NovaConfig(), rows, databases, context)])


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """main(args) in this process; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def list_json(args: list[str]) -> list[dict]:
    code, out, err = run_cli(args + ["list", "--format", "json"])
    assert code == 0, err
    return json.loads(out)


@contextlib.contextmanager
def served(settings: Settings, clock=None, authorize=None, ssl_context=None, min_interval=0.0, share_recent=False):
    """The real app on a real loopback HTTP server; yields (base_url, shared_reader).

    A scrape normally shares a reading that ended less than one reading's duration ago; tests that
    change the databases between two scrapes need the second one to read again, so that is off
    unless asked for."""
    reader = Reader(settings, clock) if clock else Reader(settings)
    shared = SharedReader(reader, min_interval, share_recent)
    app = MetricsApp(shared, settings, reader.clock, "pymysql", authorize=authorize)
    server = make_http_server(app, "127.0.0.1", 0, ssl_context)
    serve_in_thread(server)
    scheme = "https" if ssl_context else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", shared
    finally:
        server.shutdown()
        server.server_close()
        app.close()
        reader.close()


def get(url: str, headers: dict | None = None, timeout: float = 30, context=None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            body = response.read()
            return response.status, dict(response.headers), body
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def scrape(base: str, **kw) -> str:
    status, headers, body = get(base + "/metrics", **kw)
    assert status == 200, body
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return body.decode()


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, frozenset(labels)): value} of an exposition, through prometheus_client's parser."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"duplicate series {key}"
            out[key] = s.value
    return out


def series(text: str, name: str) -> dict[tuple, float]:
    """{(cell, binary, host): value} of one per-service family."""
    return {
        (dict(k[1]).get("cell"), dict(k[1]).get("binary"), dict(k[1]).get("host")): v
        for k, v in samples(text).items()
        if k[0] == name
    }


def start_exporter(args: list[str], port: int, env: dict | None = None) -> subprocess.Popen:
    """`python -m openstack_service_exporter ARGS` in a subprocess, waiting until it listens on `port`."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "openstack_service_exporter", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exporter exited {proc.returncode}: {proc.stderr.read()}")
        with contextlib.closing(socket.socket()) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("exporter did not listen within 30 s")


def stop_exporter(proc: subprocess.Popen) -> tuple[int, str, str]:
    proc.terminate()
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err
