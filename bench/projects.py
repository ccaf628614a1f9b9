"""Several projects side by side: 10,000 Nova services in 10 cells alone, then with every other project's
services beside them, in one run; and each project's cost per row, measured in process.

`python3 -m bench projects`. Scrapes are HTTP scrapes of `serve` with gzip, paced past the single-flight
window (each one a full reading). The cost per row is one source's whole share of a reading, its
database read, its rule and its lines of text, divided by its rows; it is compared with Nova's.
"""

from __future__ import annotations

import datetime
import pathlib
import random
import time
import uuid as uuidlib
from contextlib import closing

from openstack_service_exporter import config
from openstack_service_exporter.collector import judged_services
from openstack_service_exporter.exposition import service_exposition
from openstack_service_exporter.reader import Reader
from openstack_service_exporter.sources import SOURCES

from .attacks import tree_of
from .cloud import build
from .scrapes import paced, pause_after, scrape
from .servers import REPO, Exporter, com_select, free_port, proc_status, write_conf
from .stats import Stats, timed

NOVA_SIZE, NOVA_CELLS = 10_000, 10
CINDER_SIZE = 2_000
NEUTRON_SIZE = 10_000
IRONIC_SIZE = 500
RUNS = 11
AB_ROUNDS = 30  # scrapes of each exporter when Nova alone is compared with a baseline, one after the other
CINDER_COLUMNS = (
    "created_at",
    "updated_at",
    "deleted",
    "host",
    "binary",
    "topic",
    "report_count",
    "disabled",
    "availability_zone",
    "disabled_reason",
    "replication_status",
    "active_backend_id",
    "frozen",
    "cluster_name",
    "uuid",
)


def build_cinder(db, name: str, size: int, now: datetime.datetime, seed: int = 7) -> None:
    """Cinder's services: a scheduler and a backup service per controller, the rest volume backends
    (host@backend), about 5 % of them stale and a few disabled."""
    rng = random.Random(seed)
    db.create_database(name, "cinder")
    rows = []
    for i in range(size):
        if i % 50 == 0:
            host, binary = f"ctl-{i // 50:03d}", ("cinder-scheduler", "cinder-backup")[i // 50 % 2]
        else:
            host, binary = (
                f"st-{i // 4:04d}.region1.example.net@{('lvm', 'ceph', 'nfs', 'pure')[i % 4]}",
                "cinder-volume",
            )
        stale = rng.random() < 0.05
        seen = now - datetime.timedelta(seconds=rng.randint(120, 3600) if stale else rng.randint(0, 20))
        disabled = rng.random() < 0.02
        rows.append(
            (
                now - datetime.timedelta(days=90),
                seen,
                0,
                host,
                binary,
                binary,
                rng.randint(0, 10**6),
                int(disabled),
                f"az{i % 4 + 1}",
                "maintenance" if disabled else None,
                "not-capable",
                None,
                0,
                f"cluster-{i % 40}@ceph" if binary == "cinder-volume" else None,
                str(uuidlib.UUID(int=rng.getrandbits(128))),
            )
        )
    sql = "INSERT INTO services ({}) VALUES ({})".format(
        ", ".join(f"`{c}`" for c in CINDER_COLUMNS), ", ".join(["%s"] * len(CINDER_COLUMNS))
    )
    with closing(db.admin(name)) as conn, conn.cursor() as cur:
        for start in range(0, len(rows), 1000):
            cur.executemany(sql, rows[start : start + 1000])


def build_neutron(db, name: str, size: int, now: datetime.datetime, seed: int = 11) -> None:
    """Neutron's agents: an Open vSwitch agent per host, DHCP, L3 and metadata agents on one host in
    twenty (with zones), about 3 % of them dead and a few administratively down."""
    rng = random.Random(seed)
    db.create_database(name, "neutron")
    kinds = (
        ("Open vSwitch agent", "neutron-openvswitch-agent", "N/A"),
        ("DHCP agent", "neutron-dhcp-agent", "dhcp_agent"),
        ("L3 agent", "neutron-l3-agent", "l3_agent"),
        ("Metadata agent", "neutron-metadata-agent", "N/A"),
    )
    rows = []
    host = 0
    while len(rows) < size:
        host += 1
        for agent_type, binary, topic in kinds if host % 20 == 0 else kinds[:1]:
            dead = rng.random() < 0.03
            seen = now - datetime.timedelta(seconds=rng.randint(300, 7200) if dead else rng.randint(0, 30))
            zoned = agent_type in ("DHCP agent", "L3 agent")
            rows.append(
                {
                    "id": str(uuidlib.UUID(int=rng.getrandbits(128))),
                    "agent_type": agent_type,
                    "binary": binary,
                    "topic": topic,
                    "host": f"node-{host:05d}.region1.example.net",
                    "admin_state_up": int(rng.random() > 0.01),
                    "created_at": now - datetime.timedelta(days=90),
                    "started_at": now - datetime.timedelta(days=rng.randint(1, 60)),
                    "heartbeat_timestamp": seen,
                    "configurations": "{}",
                    "availability_zone": f"az{host % 4 + 1}" if zoned else None,
                }
            )
    for start in range(0, size, 1000):
        db.insert(name, "agents", rows[start : min(start + 1000, size)])


def build_ironic(db, name: str, size: int, now: datetime.datetime, seed: int = 13) -> None:
    """Ironic's conductors in groups of ten, a few offline or stale."""
    rng = random.Random(seed)
    db.create_database(name, "ironic")
    db.insert(
        name,
        "conductors",
        [
            {
                "hostname": f"bm-cond-{i:04d}",
                "drivers": '["ipmi", "redfish"]',
                "online": int(rng.random() > 0.02),
                "conductor_group": f"rack-{i // 10:03d}",
                "version": "1.6",
                "created_at": now - datetime.timedelta(days=90),
                "updated_at": now - datetime.timedelta(seconds=rng.randint(0, 15) if rng.random() > 0.03 else 900),
            }
            for i in range(size)
        ],
    )


def with_projects(conf: pathlib.Path, out: pathlib.Path, files: dict[str, pathlib.Path]) -> pathlib.Path:
    """`conf` and a section per project naming its own file."""
    out.write_text(conf.read_text() + "".join(f"\n[{p}]\nconfig_file = {f}\n" for p, f in files.items()))
    return out


def per_row(settings, runs: int) -> dict:
    """For each project: seconds per row of its read, its rule and its text, from one reader holding all."""
    out = {}
    for source in settings.sources:
        alone = config.Settings(sources=(source,), query_timeout=settings.query_timeout)
        reader = Reader(alone)
        try:
            reader.read()
            read = timed(reader.read, runs)
            snapshot = reader.read()
        finally:
            reader.close()
        rows = len(snapshot.readings[0].rows)
        judge = timed(lambda: judged_services(snapshot), runs)  # noqa: B023 - called here, in this iteration
        groups = judged_services(snapshot)
        render = timed(lambda: b"".join(service_exposition(groups, "")), runs)  # noqa: B023 - as above
        total = read.median + judge.median + render.median
        out[source.source.project] = {
            "rows": rows,
            "read": read,
            "judge": judge,
            "render": render,
            "per_row_us": total / rows * 1e6,
        }
    return out


def scrape_figures(conf: pathlib.Path, port: int, db, log_path: pathlib.Path, tree: pathlib.Path = REPO) -> dict:
    with Exporter(conf, port, "mysqldb", log_path, tree=tree) as exporter:
        stats, shared = paced(port, db, RUNS)
        pause_after(stats)
        return {"gzip": stats, "shared": shared, "peak_rss_kb": proc_status(exporter.pid)["VmHWM"]}


def alternated(
    confs: list[pathlib.Path], ports: list[int], trees: list[pathlib.Path], db, workdir: pathlib.Path
) -> list[dict]:
    """Two exporters on one cloud, running at once and scraped in turn, AB_ROUNDS times each, every
    scrape paced as `paced` does: drift of a shared machine (other work, CPU frequency) falls on both
    alike instead of on whichever ran last."""
    with (
        Exporter(confs[0], ports[0], "mysqldb", workdir / "ab-0.log", tree=trees[0]) as a,
        Exporter(confs[1], ports[1], "mysqldb", workdir / "ab-1.log", tree=trees[1]) as b,
    ):
        exporters = (a, b)
        seconds: list[list[float]] = [[], []]
        shared = [0, 0]
        longest = 0.0
        for e in exporters:  # warm-up, and the first measure of a reading's time
            started = time.perf_counter()
            scrape(e.port)
            longest = max(longest, time.perf_counter() - started)
        for _ in range(AB_ROUNDS):
            for i, e in enumerate(exporters):
                time.sleep(max(0.05, 2 * longest))
                before = com_select(db)
                started = time.perf_counter()
                scrape(e.port)
                took = time.perf_counter() - started
                shared[i] += com_select(db) == before
                seconds[i].append(took)
                longest = max(longest, took)
        return [
            {"gzip": Stats.of(seconds[i]), "shared": shared[i], "peak_rss_kb": proc_status(e.pid)["VmHWM"]}
            for i, e in enumerate(exporters)
        ]


def measure(db, workdir: pathlib.Path, log, baseline: str | None = None) -> dict:
    started = time.monotonic()
    cloud = build(db, NOVA_SIZE, NOVA_CELLS, db.url)
    now = cloud.built_at
    build_cinder(db, "bench_cinder", CINDER_SIZE, now)
    build_neutron(db, "bench_neutron", NEUTRON_SIZE, now)
    build_ironic(db, "bench_ironic", IRONIC_SIZE, now)
    files = {}
    for project in ("cinder", "neutron", "ironic"):
        files[project] = workdir / f"{project}.conf"
        files[project].write_text(f"[database]\nconnection = {db.url('bench_' + project)}\n")
    log(
        f"Nova {NOVA_SIZE} in {NOVA_CELLS} cells, Cinder {CINDER_SIZE}, Neutron {NEUTRON_SIZE}, Ironic "
        f"{IRONIC_SIZE}: built in {time.monotonic() - started:.1f} s"
    )
    port = free_port()
    nova_only = write_conf(workdir / "nova-only.conf", db.url(cloud.api_db), db.url(cloud.cell_dbs[0]), port)
    mixed = with_projects(nova_only, workdir / "mixed.conf", files)
    result: dict = {
        "nova": {"services": NOVA_SIZE, "cells": NOVA_CELLS},
        "cinder": {"services": CINDER_SIZE},
        "neutron": {"services": NEUTRON_SIZE},
        "ironic": {"services": IRONIC_SIZE},
    }
    result["per_row"] = per_row(config.load(["--config-file", str(mixed)], SOURCES), RUNS)
    log("  per-row costs done")
    result["scrape_nova_only"] = scrape_figures(nova_only, port, db, workdir / "nova-only.log")
    result["scrape_mixed"] = scrape_figures(mixed, port, db, workdir / "mixed.log")
    if baseline:  # Nova alone as that revision serves it, on the same cloud and machine
        result["baseline"] = baseline
        ports = [free_port(), free_port()]
        confs = [
            write_conf(workdir / f"ab-{i}.conf", db.url(cloud.api_db), db.url(cloud.cell_dbs[0]), p)
            for i, p in enumerate(ports)
        ]
        result["ab_rounds"] = AB_ROUNDS
        result["scrape_ab_this"], result["scrape_baseline"] = alternated(
            confs, ports, [REPO, tree_of(baseline, workdir)], db, workdir
        )
    log("  scrapes done")
    return result


def section(projects: dict) -> list[str]:
    """The RESULTS.md section of `projects`."""
    if not projects:
        return []
    rows = projects["per_row"]
    nova = rows["nova"]["per_row_us"]
    out = [
        "## Several projects",
        "",
        f"`python3 -m bench projects`: {projects['nova']['services']:,} Nova services in "
        f"{projects['nova']['cells']} cells, then the same with "
        + ", ".join(f"{projects[p]['services']:,} {p.capitalize()} services" for p in rows if p != "nova")
        + " beside them. Cost per row: one source's read, rule and text, each a median in process, "
        "divided by its rows.",
        "",
        "| project | rows | read | rule | text | per row | vs Nova |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        out.append(
            f"| {name} | {r['rows']:,} | {r['read'].median * 1000:.1f} ms | "
            f"{r['judge'].median * 1000:.1f} ms | {r['render'].median * 1000:.1f} ms | "
            f"{r['per_row_us']:.2f} µs | {r['per_row_us'] / nova:.2f}× |"
        )
    out += [
        "",
        "| scrape (gzip, paced, mysqlclient) | median (p10–p90; min–max) | shared readings | peak RSS |",
        "| --- | --- | --- | --- |",
    ]
    rows_of = [("scrape_nova_only", "Nova alone"), ("scrape_mixed", "Nova and the other projects")]
    if projects.get("scrape_ab_this"):  # the two scraped in turn (alternated)
        rows_of.append(
            ("scrape_ab_this", f"Nova alone, in turn with {projects['baseline']} ({projects['ab_rounds']} each)")
        )
        rows_of.append(("scrape_baseline", f"Nova alone, served by {projects['baseline']}, in turn with this tree"))
    elif projects.get("baseline"):
        rows_of.append(("scrape_baseline", f"Nova alone, served by {projects['baseline']}"))
    for key, label in rows_of:
        s = projects[key]
        out.append(f"| {label} | {s['gzip'].ms()} ms | {s['shared']} | {s['peak_rss_kb'] / 1024:.0f} MB |")
    return out + [""]
