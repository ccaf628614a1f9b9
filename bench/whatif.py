"""python3 -m bench whatif: changes proposed outside bench/ measured before they are made, and the
settings `serve` makes taken back one at a time to measure what each gives. Each variant is the
exporter in its own process with the change put in (bench/patches.py), scraped over HTTP like `run`
does: gzip scrape time, ten concurrent scrapes, peak RSS, statements per scrape.
"""

from __future__ import annotations

from .cloud import build, refresh
from .run import SIZES
from .scrapes import concurrent_scrapes, paced, pause_after, scrape
from .servers import Exporter, free_port, proc_status, write_conf

RUNS = {1000: 21, 10000: 15, 100000: 5}
VARIANTS = {
    "as is": (),
    "no pool_pre_ping": ("no_ping",),
    "Python's default garbage collector settings (no cli.tune_gc)": ("default_gc",),
    "glibc's default malloc arenas (environment MALLOC_ARENA_MAX=16: 8 per core)": ("env:MALLOC_ARENA_MAX=16",),
}


def _status(db) -> dict[str, int]:
    names = ("Com_select", "Com_rollback", "Com_admin_commands")
    rows = db.execute(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({','.join(['%s'] * len(names))})", names)
    return {k: int(v) for k, v in rows}


def measure(db, exporter, runs: int) -> dict:
    port = exporter.port
    out = {}
    out["gzip"], out["shared"] = paced(port, db, runs)
    pause_after(out["gzip"])  # the next scrape must not share the last reading
    before = _status(db)
    scrape(port)
    after = _status(db)
    out["statements"] = {k: after[k] - before[k] for k in before}
    pause_after(out["gzip"])
    before = _status(db)
    out["concurrent_seconds"] = concurrent_scrapes(port, 10)
    out["selects_ten_concurrent"] = _status(db)["Com_select"] - before["Com_select"]
    out["peak_rss_kb"] = proc_status(exporter.pid)["VmHWM"]
    return out


def whatif(db, workdir, sizes: list[int], log) -> dict:
    results = {}
    for size in sizes:
        cloud = build(db, size, SIZES[size], db.url)
        port = free_port()
        conf = write_conf(workdir / f"whatif-{size}.conf", db.url(cloud.api_db), db.url(cloud.cell_dbs[0]), port)
        results[str(size)] = {}
        for name, patches in VARIANTS.items():
            refresh(db, cloud)
            env = dict(p[len("env:") :].split("=", 1) for p in patches if p.startswith("env:"))
            patches = tuple(p for p in patches if not p.startswith("env:"))
            with Exporter(conf, port, "mysqldb", workdir / f"whatif-{size}.log", patches, env) as exporter:
                results[str(size)][name] = measure(db, exporter, RUNS.get(size, 5))
            log(f"whatif at {size}: {name} done")
    return results
