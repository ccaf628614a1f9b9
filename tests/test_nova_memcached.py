"""Nova with servicegroup_driver = mc, the exporter's side: its configuration, and a real memcached that
is empty, stopped or hung. Heartbeats written by Nova itself, compared with Nova's own verdicts:
tests/conformance/test_conformance_memcached.py."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

import pytest
from cloud import insert_services, service
from helpers import run_cli, samples, scrape, served
from memcached import Memcached

from openstack_service_exporter import config
from openstack_service_exporter.reader import Reader
from openstack_service_exporter.sources import SOURCES

QUERY_TIMEOUT = 2.0
BACKENDS = ("dogpile.cache.pymemcache", "oslo_cache.memcache_pool", "dogpile.cache.memcached")
REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture
def memcached():
    server = Memcached().start()
    yield server
    server.stop()


@pytest.fixture
def cell(mariadb, new_db):
    database = new_db("services")
    insert_services(
        mariadb,
        database,
        [service("cmp-1"), service("cmp-2", forced_down=1), service("ctl-1", binary="nova-scheduler")],
    )
    return mariadb.url(database)


def nova_conf(tmp_path, url: str, cache: str, default: str = "servicegroup_driver = mc\n") -> pathlib.Path:
    path = tmp_path / "nova.conf"
    path.write_text(f"[DEFAULT]\n{default}[database]\nconnection = {url}\n[cache]\n{cache}")
    return path


def cache_section(server: str, backend: str) -> str:
    return f"enabled = true\nbackend = {backend}\nmemcache_servers = {server}\n"


def settings(conf: pathlib.Path) -> config.Settings:
    return config.load(["--config-file", str(conf), "--exporter-query_timeout", str(QUERY_TIMEOUT)], SOURCES)


def cache_health(snapshot):
    (health,) = [db for db in snapshot.databases if db.cell == "(memcached)"]
    return health


@pytest.mark.parametrize(
    "cache,expected",
    [
        ("", "[cache] enabled = true and memcache_servers"),  # Nova makes no client: it cannot tell either
        ("enabled = true\nmemcache_servers =\n", "[cache] enabled = true and memcache_servers"),
        ("enabled = true\nbackend = dogpile.cache.nosuch\n", "dogpile.cache.nosuch"),
        ("enabled = true\nexpiration_time = 100\nbackend_expiration_time = 30\n", "backend_expiration_time"),
    ],
)
def test_a_cache_nova_cannot_read_heartbeats_from_is_refused(tmp_path, cache, expected):
    code, _, err = run_cli(["--config-file", str(nova_conf(tmp_path, "sqlite://", cache)), "list"])
    assert code == 2 and expected in err and "Traceback" not in err, err


def test_without_oslo_cache_the_error_names_the_extra(tmp_path):
    conf = nova_conf(tmp_path, "sqlite://", "enabled = true\n")
    # A process in which oslo_cache cannot be imported, as where the extra is not installed.
    code = (
        "import sys; sys.modules['oslo_cache'] = None\n"
        "from openstack_service_exporter.cli import main\n"
        f"sys.exit(main(['--config-file', {str(conf)!r}, 'list']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert done.returncode == 2, done.stderr
    assert "openstack-service-exporter[memcached]" in done.stderr and "Traceback" not in done.stderr


def test_the_null_backend_is_read_and_noted(tmp_path, cell):
    conf = nova_conf(tmp_path, cell, "enabled = true\nbackend = dogpile.cache.null\n")
    code, out, err = run_cli(["--config-file", str(conf), "list"])
    assert code == 0, err
    assert "dogpile.cache.null" in err and "note: nova:" in err
    assert out.count("XXX") == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_empty_cache_answers_every_service_down(tmp_path, cell, memcached, backend):
    conf = nova_conf(
        tmp_path,
        cell,
        cache_section(memcached.server, backend),
        "servicegroup_driver = mc\nservice_down_time = 7\nreport_interval = 10\n",
    )
    with served(settings(conf)) as (base, _):
        text = samples(scrape(base))
    up = {dict(k[1])["host"]: v for k, v in text.items() if k[0] == "service_up"}
    assert up == {"cmp-1": 0.0, "cmp-2": 0.0, "ctl-1": 0.0}
    assert not [k for k in text if k[0] in ("service_heartbeat_age_seconds", "service_last_seen_timestamp_seconds")]
    assert text[("service_exporter_database_up", frozenset({("project", "nova"), ("cell", "(memcached)")}))] == 1.0
    # the region's expiry is the down time servicegroup.API applied: int(2.5 x 10)
    assert text[("service_down_time_seconds", frozenset({("project", "nova")}))] == 25.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hung_then_stopped_memcached_costs_at_most_query_timeout(tmp_path, cell, memcached, backend):
    reader = Reader(settings(nova_conf(tmp_path, cell, cache_section(memcached.server, backend))))
    try:
        snapshot = reader.read()
        assert cache_health(snapshot).up and len(snapshot.readings[0].rows) == 3

        memcached.pause()
        started = time.monotonic()
        snapshot = reader.read()
        took = time.monotonic() - started
        health = cache_health(snapshot)
        assert not health.up and health.error, health
        assert took <= QUERY_TIMEOUT + 0.5, took
        assert snapshot.readings[0].rows == []  # no heartbeats, no verdict: the rows go, as a failed cell's

        started = time.monotonic()
        again = cache_health(reader.read())  # the first read may still hold its thread: never a second one
        assert not again.up and time.monotonic() - started <= QUERY_TIMEOUT + 0.5

        memcached.resume()
        deadline = time.monotonic() + 10
        while not cache_health(snapshot := reader.read()).up and time.monotonic() < deadline:
            time.sleep(0.2)
        assert cache_health(snapshot).up and len(snapshot.readings[0].rows) == 3

        memcached.stop()
        started = time.monotonic()
        health = cache_health(reader.read())
        assert not health.up and time.monotonic() - started <= QUERY_TIMEOUT + 0.5
        assert "did not answer" in health.error or "refused" in health.error, health.error
    finally:
        reader.close()


def test_the_health_series_says_so(tmp_path, cell, memcached):
    conf = nova_conf(tmp_path, cell, cache_section(memcached.server, "dogpile.cache.pymemcache"))
    memcached.stop()
    with served(settings(conf)) as (base, _):
        text = samples(scrape(base))
    health = {dict(k[1])["cell"]: v for k, v in text.items() if k[0] == "service_exporter_database_up"}
    assert health == {"": 1.0, "(memcached)": 0.0}
    assert not [k for k in text if k[0] == "service_up"]
