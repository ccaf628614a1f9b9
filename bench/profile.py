"""Where a scrape's CPU goes: py-spy samples the exporter process while scrapes run, in whichever
thread holds the GIL (cells are read in worker threads, which an in-thread profiler would miss);
the raw stacks are summed per stage of the data's trip and per function. Time spent with the GIL
released (the C driver waiting on its socket, zlib) is not in it: the in-process stage timings
of RESULTS.md show that."""

from __future__ import annotations

import collections
import pathlib
import re
import shutil
import subprocess
import time

# Stages of one scrape, by the function whose frame is on the stack (first match from the leaf up).
STAGES = (
    ("gzip: deflate and CRC of the services (Renderer._compress)", ("_compress",)),
    ("gzip of the whole body (before)", ("compress",)),
    ("fast writer of the per-service families", ("service_exposition",)),
    ("prometheus_client generate_latest (health families; before: every family)", ("generate_latest",)),
    ("prometheus_client families (before)", ("service_families",)),
    ("verdict: judge (Judged objects)", ("judge",)),
    (
        "cell query: driver's fetch, rows made ServiceRows, pool (nova_db.read_services)",
        ("read_services", "read_db_clock", "_query_cell", "_prepare"),
    ),
    ("API database: cells, zones", ("_read_api", "read_host_zones", "read_cell_mappings")),
    ("HTTP server, WSGI", ("handle", "finish_response", "process_request_thread")),
)
_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+):\d+\)$")


def record(pid: int, seconds: float, out: pathlib.Path, rate: int = 250) -> subprocess.Popen:
    """Starts py-spy on `pid` for `seconds`; raw collapsed stacks go to `out`."""
    exe = shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("py-spy is not installed: pip install -r bench/requirements.txt")
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
            "--gil",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for frame in stack.split(";"):
        m = _FRAME.match(frame.strip())
        if m:
            file = m.group("file")
            out.append((m.group("func"), "/".join(pathlib.PurePath(file).parts[-2:])))
        else:
            out.append((frame.strip(), ""))
    return out


def summarize(raw: pathlib.Path, top: int = 12) -> dict:
    """{"samples": N, "stages": [(stage, share)], "self": [(function, share)]}; shares of all
    samples of busy threads."""
    stages: collections.Counter = collections.Counter()
    leaves: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = _frames(stack)
        func, file = frames[-1]
        leaves[f"{func} ({file})"] += n
        stages[_stage(frames)] += n
    share = (lambda c: [(k, v / total) for k, v in c.most_common()]) if total else (lambda c: [])
    return {"samples": total, "stages": share(stages), "self": share(leaves)[:top]}


def _stage(frames: list[tuple[str, str]]) -> str:
    for func, file in reversed(frames):
        label = f"{func} ({file}"
        name = func.rsplit(".", 1)[-1]  # py-spy names methods Class.method
        for stage, keys in STAGES:
            if any(name == k or label.startswith(k) for k in keys):
                return stage
    return "other (interpreter, threads, sockets)"


def profile_exporter(pid: int, drive, seconds: float, out: pathlib.Path) -> dict:
    """Samples the exporter while `drive()` (scrapes) runs, for about `seconds`. The scrapes are
    paced (see scrapes.paced) so that each one is a full reading; the pauses hold no GIL and so
    leave no samples."""
    spy = record(pid, seconds, out)
    time.sleep(1.0)  # py-spy attaches
    deadline = time.monotonic() + seconds - 2
    scrapes = 0
    while time.monotonic() < deadline:
        started = time.monotonic()
        drive()
        scrapes += 1
        time.sleep(max(0.05, 2 * (time.monotonic() - started)))
    spy.wait(timeout=seconds + 60)
    result = summarize(out)
    result["scrapes"] = scrapes
    return result
