"""python3 -m bench run: every figure of RESULTS.md, in one process so that the ratios are fair.

For each size: the synthetic cloud, the floors (C client, bare drivers), prometheus_client's and the
fast writer's rendering of one reading, the naive stack, the exporter over HTTP with each driver
(and as it was before the fast writer), `list --format json`, and Nova's own GET /os-services.
"""

from __future__ import annotations

import gzip
import json
import pathlib
import subprocess
import time

from openstack_service_exporter import config
from openstack_service_exporter.collector import families, judged_services
from openstack_service_exporter.exposition import Renderer, exposition, render
from openstack_service_exporter.http import GZIP_LEVEL
from openstack_service_exporter.reader import Reader
from openstack_service_exporter.sources import SOURCES

from . import floors, nova_api, profile
from .cloud import Cloud, build, refresh
from .naive import NaiveExporter
from .scrapes import measure_exporter, paced, scrape
from .servers import DRIVERS, PASSWORD, REPO, USER, Exporter, exporter_command, free_port, proc_status, write_conf
from .stats import Stats, timed

SIZES = {1000: 1, 10000: 10, 100000: 50}  # services: cells
RUNS = {1000: 21, 10000: 11, 100000: 5}  # repeats of each timing
SLOW_RUNS = {1000: 7, 10000: 5, 100000: 3}  # the slow paths: prometheus_client rendering, naive, before
LIST_RUNS = {1000: 5, 10000: 3, 100000: 2}
NOVA_RUNS = {1000: 5, 10000: 3, 100000: 1}
NOVA_WARMUP = {100000: 0}  # a request takes over a minute there: the one measured is Nova's first
NOVA_DICT_MAX = 10000  # Nova's default cache is quadratic in the hosts: not run above this size


def settings_of(conf: pathlib.Path):
    return config.load(["--config-file", str(conf)], SOURCES)


def render_only(settings, runs: int, slow_runs: int) -> dict:
    """One reading, read in this process, rendered by prometheus_client and by the fast writer."""
    reader = Reader(settings)
    try:
        reader.read()
        read = timed(reader.read, runs)
        snap = reader.read()
    finally:
        reader.close()
    now = snap.now
    body = b"".join(exposition(snap, settings, now, "x"))
    return {
        "read_in_process": read,
        "judge": timed(lambda: judged_services(snap), runs),
        "prometheus_client": timed(lambda: render(families(snap, settings, now, "x")), slow_runs),
        "fast_writer": timed(lambda: b"".join(exposition(snap, settings, now, "x")), runs),
        "fast_writer_gzip": timed(lambda: Renderer(GZIP_LEVEL).body(snap, settings, now, "x", gzip=True), runs),
        "gzip6": timed(lambda: gzip.compress(body, 6), slow_runs),
        "gzip1": timed(lambda: gzip.compress(body, 1), runs),
        "same_bytes": body == render(families(snap, settings, now, "x")),
        "bytes": len(body),
    }


def list_json(conf: pathlib.Path, driver: str, runs: int) -> tuple[Stats, int]:
    """Wall time of the whole command (interpreter start included); and how many services are up."""
    command = exporter_command(driver) + ["--config-file", str(conf), "list", "--format", "json"]
    seconds, up = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        seconds.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"list failed: {done.stderr[-1000:]}")
        up = sum(s["state"] == "up" for s in json.loads(done.stdout))
    return Stats.of(seconds), up


def measure_floors(db, cloud: Cloud, runs: int) -> dict:
    databases = [cloud.cell0_db] + cloud.cell_dbs  # what the exporter reads: every cell mapping
    ints, dates = floors.exporter_sql(), floors.datetime_sql()
    out = {}
    out["c_client"], out["c_client_start"] = floors.c_client(db.socket, databases, ints, runs)
    for name, connect in floors.connectors(db.port, USER, PASSWORD).items():
        out[f"{name}_ints"] = floors.bare_driver(connect, databases, ints, runs)
        out[f"{name}_datetime"] = floors.bare_driver(connect, databases, dates, runs)
    out["sqlalchemy_pymysql_datetime"] = floors.sqlalchemy_pymysql(db.url, databases, dates, runs)
    return out


def measure_size(db, workdir: pathlib.Path, size: int, cells: int, nova_python, log) -> dict:
    started = time.monotonic()
    cloud = build(db, size, cells, db.url)
    log(f"{size} services in {cells} cells: built in {time.monotonic() - started:.1f} s")
    runs, slow = RUNS.get(size, 5), SLOW_RUNS.get(size, 3)
    port = free_port()
    conf = write_conf(workdir / f"exporter-{size}.conf", db.url(cloud.api_db), db.url(cloud.cell_dbs[0]), port)
    result: dict = {
        "size": size,
        "cells": cells,
        "rows_written": cloud.rows_written,
        "states": cloud.states,
        "zone_hosts": cloud.zone_hosts,
    }

    refresh(db, cloud)
    result["floors"] = measure_floors(db, cloud, runs)
    log("  floors done")
    result["render"] = render_only(settings_of(conf), runs, slow)
    log("  in-process rendering done")
    naive = NaiveExporter(db.url(cloud.api_db))
    try:
        result["naive_bytes_gzip6"] = len(naive.scrape())
        result["naive"] = timed(naive.scrape, slow)
    finally:
        naive.close()
    log("  naive stack done")

    result["exporter"] = {}
    for driver in DRIVERS:
        refresh(db, cloud)
        with Exporter(conf, port, driver, workdir / f"exporter-{size}-{driver}.log") as exporter:
            result["exporter"][driver] = measure_exporter(exporter, db, runs)
        result["exporter"][driver]["list_json"], _ = list_json(conf, driver, LIST_RUNS.get(size, 2))
        log(f"  exporter with {driver} done")
    with Exporter(conf, port, "mysqldb", workdir / f"exporter-{size}-before.log", ("before",)) as exporter:
        result["before"] = {}
        result["before"]["gzip"], _ = paced(port, db, slow)
        result["before"]["peak_rss_kb"] = proc_status(exporter.pid)["VmHWM"]
    log("  exporter as before the fast writer done")

    result["nova"] = {}
    for cache in ("memory", "dict"):
        if nova_python is None or (cache == "dict" and size > NOVA_DICT_MAX):
            continue
        refresh(db, cloud)
        nova_conf = nova_api.write_nova_conf(
            workdir / f"nova-{size}-{cache}.conf", db.url(cloud.api_db), db.url(cloud.cell_dbs[0]), cache
        )
        _, exporter_up = list_json(conf, "mysqldb", 1)  # the exporter's verdicts, just before Nova's
        got = nova_api.list_services(nova_python, nova_conf, NOVA_RUNS.get(size, 1), NOVA_WARMUP.get(size, 1))
        got["exporter_up"] = exporter_up
        result["nova"][cache] = got
        log(f"  Nova ({cache} cache) done: {got['stats'].median:.2f} s")
    return result


def profile_size(db, workdir: pathlib.Path, size: int, cells: int, seconds: float, log) -> dict:
    """py-spy over the exporter while it is scraped, per driver, and as before the fast writer."""
    cloud = build(db, size, cells, db.url)
    refresh(db, cloud)
    port = free_port()
    conf = write_conf(workdir / f"profile-{size}.conf", db.url(cloud.api_db), db.url(cloud.cell_dbs[0]), port)
    out = {}
    for label, driver, patches in (
        ("mysqlclient", "mysqldb", ()),
        ("PyMySQL", "pymysql", ()),
        ("before the fast writer (mysqlclient)", "mysqldb", ("before",)),
    ):
        with Exporter(conf, port, driver, workdir / f"profile-{driver}-{len(patches)}.log", patches) as exporter:
            scrape(port)
            out[label] = profile.profile_exporter(
                exporter.pid, lambda: scrape(port), seconds, workdir / f"profile-{driver}-{len(patches)}.txt"
            )
        log(f"  profile {label} done")
    return out


def run(
    db, workdir: pathlib.Path, sizes: list[int], with_nova: bool, profile_at: int | None, profile_seconds: float, log
) -> dict:
    nova_python = None
    if with_nova:
        log("Nova 34.0.0 venv ...")
        nova_python = nova_api.nova_python()
    results = {"sizes": [], "profile": None, "profile_size": profile_at}
    for size in sizes:
        results["sizes"].append(measure_size(db, workdir, size, SIZES[size], nova_python, log))
    if profile_at:
        log(f"profiling at {profile_at} services")
        results["profile"] = profile_size(db, workdir, profile_at, SIZES[profile_at], profile_seconds, log)
    return results
