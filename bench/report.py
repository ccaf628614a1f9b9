"""RESULTS.md from the JSON results of `run` and `soak` (bench/results/)."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import re
import subprocess

from .projects import section as projects_section
from .stats import Stats

HERE = pathlib.Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
RESULTS_MD = HERE / "RESULTS.md"


def machine(db=None) -> dict:
    """The machine and software the figures come from."""
    cpuinfo = pathlib.Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", pathlib.Path("/proc/meminfo").read_text(), re.M)
    versions = {}
    for module, name in (
        ("prometheus_client", "prometheus_client"),
        ("sqlalchemy", "SQLAlchemy"),
        ("pymysql", "PyMySQL"),
        ("MySQLdb", "mysqlclient"),
        ("isal", "isal"),
    ):
        try:
            from importlib.metadata import version

            versions[name] = version({"MySQLdb": "mysqlclient", "sqlalchemy": "SQLAlchemy"}.get(module, module))
        except Exception:
            versions[name] = "not installed"
    out = {
        "cpu": model.group(1).strip() if model else platform.processor(),
        "cores": os.cpu_count(),
        "ram_gib": round(int(mem.group(1)) / 2**20, 1) if mem else None,
        "python": platform.python_version(),
        "versions": versions,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": os.getloadavg(),
    }
    if db is not None:
        out["mariadb"] = db.execute("SELECT VERSION()")[0][0]
    else:
        exe = subprocess.run(["mariadbd", "--version"], capture_output=True, text=True)
        out["mariadb"] = exe.stdout.strip()
    return out


def save(name: str, data: dict) -> None:
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(data, indent=1, default=_json) + "\n")


def _json(value):
    if isinstance(value, Stats):
        return {"stats": [value.runs, value.median, value.p10, value.p90, value.min, value.max]}
    raise TypeError(type(value))


def _load(name: str):
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(), object_hook=lambda d: Stats(*d["stats"]) if set(d) == {"stats"} else d)


def _ms(s: Stats) -> str:
    return s.ms()


def _mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b else "n/a"


def targets(run: dict) -> list[tuple[str, str, bool | None]]:
    by_size = {s["size"]: s for s in run["sizes"]}
    rows: list[tuple[str, str, bool | None]] = []
    ten = by_size.get(10000)
    if ten:
        for driver, name, limit in (("mysqldb", "mysqlclient", 0.100), ("pymysql", "PyMySQL", 0.200)):
            median = ten["exporter"][driver]["gzip"].median
            rows.append(
                (
                    f"10,000 services, full gzip scrape with {name} <= {limit * 1000:.0f} ms",
                    f"{median * 1000:.1f} ms (median)",
                    median <= limit,
                )
            )
        nova = [n["stats"].median for n in ten["nova"].values()]
        for driver, name in (("mysqldb", "mysqlclient"), ("pymysql", "PyMySQL")):
            median = ten["exporter"][driver]["gzip"].median
            if nova:
                # The 40x target goes with the 100 ms one (the issue measured Nova at 4.7 s; 40x is 117 ms): the fast
                # driver's. PyMySQL's ratio is shown for the record; its own limit is 200 ms.
                best = min(nova)
                rows.append(
                    (
                        f">= 40x faster than Nova's GET /os-services (10,000, {name})"
                        if driver == "mysqldb"
                        else f"speed-up over Nova's GET /os-services (10,000, {name})",
                        f"{_ratio(best, median)} ({best * 1000:.0f} ms / {median * 1000:.1f} ms)",
                        best / median >= 40 if driver == "mysqldb" else None,
                    )
                )
            naive = ten["naive"].median
            rows.append(
                (
                    f">= 4x faster than the naive stack (10,000, {name})",
                    f"{_ratio(naive, median)} ({naive * 1000:.0f} ms / {median * 1000:.1f} ms)",
                    naive / median >= 4,
                )
            )
    big = by_size.get(100000)
    if big:
        for driver, name, limit in (("mysqldb", "mysqlclient", 1.2), ("pymysql", "PyMySQL", 2.5)):
            e = big["exporter"][driver]
            rows.append(
                (
                    f"100,000 services in 50 cells with {name} <= {limit} s",
                    f"{e['gzip'].median:.2f} s",
                    e["gzip"].median <= limit,
                )
            )
            rows.append(
                (
                    f"100,000 services with {name}: peak RSS <= 250 MB",
                    _mb(e["peak_rss_kb"]),
                    e["peak_rss_kb"] <= 250 * 1024,
                )
            )
    for size, s in sorted(by_size.items()):
        for driver, name in (("mysqldb", "mysqlclient"), ("pymysql", "PyMySQL")):
            e = s["exporter"][driver]
            rows.append(
                (
                    f"10 concurrent scrapes = one database round ({size:,}, {name})",
                    f"{e['selects_ten_concurrent']} SELECTs for 10 scrapes, {e['selects_one_scrape']} for one",
                    e["selects_ten_concurrent"] == e["selects_one_scrape"],
                )
            )
    return rows


def _size_section(s: dict) -> list[str]:
    size, f, r = s["size"], s["floors"], s["render"]
    states = ", ".join(f"{k} {v:,}" for k, v in sorted(s["states"].items(), key=lambda kv: -kv[1]))
    out = [
        f"### {size:,} services in {s['cells']} cell{'s' if s['cells'] != 1 else ''} (+ an empty cell0)",
        "",
        f"{s['rows_written']:,} rows written (API services and soft-deleted rows included, which Nova hides); "
        f"computes: {states}; {s['zone_hosts']:,} hosts in AZ aggregates.",
        "",
        "| what | median ms (p10–p90; min–max) |",
        "| --- | --- |",
    ]
    line = lambda label, stats: out.append(f"| {label} | {_ms(stats)} |")  # noqa: E731
    line("floor: `mariadb -e` (C client) fetching every cell's rows to /dev/null", f["c_client"])
    line("  the same process running only `SELECT 1` (its start-up)", f["c_client_start"])
    for name in ("mysqlclient", "PyMySQL"):
        for kind, what in (
            ("ints", "the exporter's query (timestamps as integers)"),
            ("datetime", "timestamps as DATETIME"),
        ):
            if f"{name}_{kind}" in f:
                line(f"floor: bare {name}, {what}", f[f"{name}_{kind}"])
    line("floor: SQLAlchemy Core over PyMySQL, DATETIME", f["sqlalchemy_pymysql_datetime"])
    line("in process: one reading (Reader.read, mysqlclient)", r["read_in_process"])
    line("in process: Nova's verdict on every row (judge)", r["judge"])
    line("in process: prometheus_client families + generate_latest", r["prometheus_client"])
    line("in process: fast writer (openstack_service_exporter/exposition.py)", r["fast_writer"])
    line(
        "in process: fast writer + gzip as served (Renderer: ISA-L's deflate when isal is installed, as here)",
        r["fast_writer_gzip"],
    )
    line("in process: gzip 6 (zlib) of the whole exposition (prometheus_client's level)", r["gzip6"])
    line("in process: gzip 1 (zlib) of the whole exposition", r["gzip1"])
    line("naive stack: SQLAlchemy + PyMySQL + prometheus_client + gzip 6 (in process, no HTTP)", s["naive"])
    for driver, name in (("mysqldb", "mysqlclient"), ("pymysql", "PyMySQL")):
        e = s["exporter"][driver]
        line(f"**exporter over HTTP, {name}, gzip (as Prometheus scrapes)**", e["gzip"])
        line(f"exporter over HTTP, {name}, no gzip", e["plain"])
        line(f"`list --format json`, {name} (whole command, interpreter start included)", e["list_json"])
    line("exporter before the fast writer (generate_latest), mysqlclient, gzip", s["before"]["gzip"])
    for cache, n in s["nova"].items():
        label = {
            "memory": "[cache] dogpile.cache.memory, cells in parallel",
            "dict": "default cache (oslo_cache.dict), one cell at a time",
        }[cache]
        line(f"Nova 34.0.0 GET /os-services, {label}", n["stats"])
    out.append("")
    e1, e2 = s["exporter"]["mysqldb"], s["exporter"]["pymysql"]
    out += [
        "| other figures | mysqlclient | PyMySQL |",
        "| --- | --- | --- |",
        f"| exposition bytes, plain / gzip 1 | {e1['bytes_plain']:,} / {e1['bytes_gzip']:,} | "
        f"{e2['bytes_plain']:,} / {e2['bytes_gzip']:,} |",
        f"| peak RSS of the exporter process (VmHWM) | {_mb(e1['peak_rss_kb'])} | {_mb(e2['peak_rss_kb'])} |",
        f"| SELECTs per scrape / per 10 concurrent scrapes | {e1['selects_one_scrape']} / "
        f"{e1['selects_ten_concurrent']} | {e2['selects_one_scrape']} / {e2['selects_ten_concurrent']} |",
        f"| slowest of the 10 concurrent scrapes | {max(e1['concurrent_seconds']) * 1000:.0f} ms | "
        f"{max(e2['concurrent_seconds']) * 1000:.0f} ms |",
        f"| services / up in the exposition | {e1['exposition']['services']:,} / {e1['exposition']['up']:,} | "
        f"{e2['exposition']['services']:,} / {e2['exposition']['up']:,} |",
    ]
    out += [
        "",
        f"Before the fast writer: peak RSS {_mb(s['before']['peak_rss_kb'])}; naive stack's body "
        f"{s['naive_bytes_gzip6']:,} bytes at gzip 6. Fast writer's bytes equal generate_latest's: "
        f"{'yes' if r['same_bytes'] else 'NO'} ({r['bytes']:,} bytes).",
    ]
    for cache, n in s["nova"].items():
        out.append(
            f"Nova ({cache}): {n['services']:,} services, {n['up']:,} up, {n['bytes']:,} bytes of JSON; "
            f"the exporter, just before: {n['exporter_up']:,} up."
            + (
                f" Nova listed {n['services']:,} of {s['size']:,}: it drops the cells that do not answer "
                "within its 60 s scatter-gather timeout (nova/context.py CELL_TIMEOUT), and its heartbeat "
                "verdicts are those of a minute later."
                if n["services"] < s["size"]
                else ""
            )
        )
    out.append("")
    return out


def _profile_section(run: dict) -> list[str]:
    prof = run.get("profile")
    if not prof:
        return []
    out = [
        f"## Profile: {run['profile_size']:,} services, py-spy (`--gil`) on the exporter process while it is scraped",
        "",
        "Share of the samples in which Python held the GIL, by stage of the scrape, then by function "
        "(self time). Waiting on the database and zlib's compression run with the GIL released and are "
        "not in these shares; the in-process timings above give them.",
        "",
    ]
    for label, p in prof.items():
        out += [
            f"### {label}: {p['samples']:,} samples over {p['scrapes']} scrapes",
            "",
            "| stage | share |",
            "| --- | --- |",
        ]
        out += [f"| {name} | {share * 100:.1f}% |" for name, share in p["stages"]]
        out += ["", "| function (self) | share |", "| --- | --- |"]
        out += [f"| `{name}` | {share * 100:.1f}% |" for name, share in p["self"]]
        out.append("")
    return out


def _soak_section(soak: dict) -> list[str]:
    if not soak:
        return []
    first, last = soak["first_window"], soak["last_window"]
    out = [
        "## Load and soak",
        "",
        f"`python3 -m bench soak`: {soak['scrapers']} concurrent scrapers for {soak['duration']:.0f} s against "
        f"{soak['size']:,} services in {soak['cells']} cells (one cell on a second MariaDB server, stopped at "
        f"{soak['stop_at']:.1f} s, started again at {soak.get('restart_at', soak['start_at']):.1f} s and answering at "
        f"{soak['start_at']:.1f} s), after {soak.get('warmup', 0):.0f} s of the same load to warm up; loopback "
        f"only, driver {soak['driver']}.",
        "",
        f"- scrapes: {soak['scrapes']:,} answered, {soak['errors']} errors "
        f"({soak['non_200']} not 200, {soak['failed']} failed connections); median "
        f"{soak['latency'].median * 1000:.0f} ms, p90 {soak['latency'].p90 * 1000:.0f} ms, "
        f"max {soak['latency'].max * 1000:.0f} ms",
        f"- while the cell server was down: {soak['scrapes_cell_down']:,} scrapes, all HTTP 200 with "
        f'`service_exporter_database_up{{cell="{soak["killed_cell"]}"}} 0`: '
        f"{'yes' if soak['down_seen'] else 'NO'}; back to 1 after the restart: "
        f"{'yes' if soak['recovered'] else 'NO'} (seen {soak['recovery_seconds']:.1f} s after the restart began)",
        f"- database rounds: {soak['rounds']:,} for {soak['scrapes']:,} scrapes (single-flight)",
        "",
        "| exporter process | first 10 s (min–max) | last 10 s (min–max) | growth |",
        "| --- | --- | --- | --- |",
    ]
    for key, label in (("rss_kb", "RSS (kB)"), ("fds", "open file descriptors"), ("threads", "threads")):
        out.append(
            f"| {label} | {first[key][0]:,}–{first[key][1]:,} | {last[key][0]:,}–{last[key][1]:,} | "
            f"{'none' if last[key][1] <= first[key][1] else f'+{last[key][1] - first[key][1]:,}'} |"
        )
    before, after = soak["idle_before"], soak["idle_after"]
    out += [
        "",
        f"At rest ({3:.0f} s after the last scrape), before the run and after it: "
        f"{before['fds']} / {after['fds']} file descriptors, {before['threads']} / {after['threads']} threads, "
        f"RSS {before['rss_kb']:,} / {after['rss_kb']:,} kB.",
        "",
        f"Verdict: {'PASS' if soak['passed'] else 'FAIL'} ({soak['verdict']}).",
        "",
    ]
    return out


def _whatif_section(whatif: dict) -> list[str]:
    if not whatif:
        return []
    out = [
        "## Changes measured by putting them in (`python3 -m bench whatif`)",
        "",
        "The exporter in its own process with one change put in (bench/patches.py): a change proposed "
        "outside bench/, or a setting of `serve` taken back. mysqlclient, scraped over HTTP with gzip; "
        "statements are MariaDB's global counters over one scrape.",
        "",
    ]
    for size, variants in whatif.items():
        out += [
            f"### {int(size):,} services",
            "",
            "| variant | gzip scrape, median ms (p10–p90; min–max) | "
            "SELECT / ROLLBACK / ping per scrape | 10 concurrent: slowest, SELECTs | peak RSS |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, v in variants.items():
            st = v["statements"]
            out.append(
                f"| {name} | {_ms(v['gzip'])} | {st['Com_select']} / {st['Com_rollback']} / "
                f"{st['Com_admin_commands']} | {max(v['concurrent_seconds']) * 1000:.0f} ms, "
                f"{v['selects_ten_concurrent']} | {_mb(v['peak_rss_kb'])} |"
            )
        out.append("")
    return out


def _attacks_section(attacks: dict | None) -> list[str]:
    if not attacks:
        return []
    out = [
        "## Attacks on the HTTP server",
        "",
        f"`{attacks['command']}` ({attacks['machine']['date']}): each attack runs {attacks['window_s']:g} s "
        "against `serve` (default limits) while a normal scrape (gzip, new connection) is timed "
        f"{attacks['results'][0]['quiet'].runs} times (medians); RSS and threads are sampled every 0.1 s during it "
        "and read "
        f"{attacks['after_s']:g} s after it ended. Targets: during each attack the scrape within twice its "
        "quiet time, RSS below 250 MB, threads at most 20; after it, both back.",
        "",
        "| exporter | attack | services | scrape quiet | scrape during | RSS before | peak RSS | RSS after | "
        "threads before / peak / after |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in attacks["results"]:
        during = _ms(r["during"]) if r["during"] else "no answer: " + "; ".join(r["errors"])
        out.append(
            f"| {r['exporter']} | {r['attack']} | {r['services']:,} | {_ms(r['quiet'])} | {during} | "
            f"{_mb(r['before']['VmRSS'])} | {_mb(r['peak'].get('rss_kb', 0))} | {_mb(r['after']['VmRSS'])} | "
            f"{r['before']['Threads']} / {r['peak'].get('threads')} / {r['after']['Threads']} |"
        )
    return out + [""]


def write() -> None:
    run, soak, whatif, projects, attacks = (
        _load("run"),
        _load("soak"),
        _load("whatif"),
        _load("projects"),
        _load("attacks"),
    )
    out = [
        "# Benchmark results",
        "",
        "Made by the commands below on the machine described; every figure is a median over repeated runs "
        "with its spread, taken in one process run so that the ratios are fair.",
        "",
        "Reproduce (from the repository root, MariaDB server and client installed, e.g. "
        "`apt-get install mariadb-server libmariadb-dev pkg-config python3-dev build-essential python3-venv`):",
        "",
        "```",
        "pip install -e '.[test,fast]' -r bench/requirements.txt",
        "python3 -m bench run                 # 1,000 / 10,000 / 100,000 services, Nova side by side",
        "python3 -m bench run --sizes 1000    # a quick run",
        "python3 -m bench soak                # 50 scrapers for 180 s, a cell server stopped and restarted",
        "python3 -m bench whatif              # serve's settings taken back one at a time, proposed changes",
        "python3 -m bench projects            # Nova alone and with the other projects, cost per row",
        "python3 -m bench attacks --baseline 93c555b  # the HTTP attacks, this tree and the stdlib server's",
        "```",
        "",
    ]
    if run:
        m = run["machine"]
        out += [
            "## Machine",
            "",
            f"- {m['cores']} cores: {m['cpu']}; {m['ram_gib']} GiB RAM",
            f"- Python {m['python']}; MariaDB {m['mariadb']}; "
            + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
            f"- {m['date']}; load average at the start {m['load_average'][0]:.2f} (a machine shared with "
            "other work: spreads are wide where it was busy)",
            f"- command: `{run['command']}`; took {run['seconds'] / 60:.1f} min",
            "",
        ]
        out += ["## Targets", "", "| target | measured | met |", "| --- | --- | --- |"]
        out += [
            f"| {t} | {v} | {'met' if ok else 'for the record' if ok is None else 'NOT met'} |"
            for t, v, ok in targets(run)
        ]
        out += [
            "",
            "## Figures per size",
            "",
            "Exporter figures are HTTP scrapes from another process on a new connection each, with "
            "`X-Prometheus-Scrape-Timeout-Seconds: 10` (and `Accept-Encoding: gzip` where said); the "
            "body is read whole. Floors read the same rows (every cell, cell0 included) on open "
            "connections. Nova is measured in-process in its own venv (see `bench/nova_side.py`): "
            "the compute API router with an admin context, microversion 2.11, JSON serialization.",
            "",
        ]
        for s in run["sizes"]:
            out += _size_section(s)
        out += _profile_section(run)
        if run.get("notes"):
            out += ["## Notes", ""] + [f"- {n}" for n in run["notes"]] + [""]
    out += projects_section(projects)
    # bench.ovn prints its figures; they are kept by hand in OVN.md (runs side by side, with notes).
    ovn = HERE / "OVN.md"
    if ovn.exists():
        out += [ovn.read_text().strip(), ""]
    out += _whatif_section(whatif)
    out += _soak_section(soak)
    out += _attacks_section(attacks)
    analysis = HERE / "ANALYSIS.md"
    if analysis.exists():
        out += ["", analysis.read_text().strip()]
    RESULTS_MD.write_text("\n".join(out).rstrip() + "\n")
