"""Nova's own GET /os-services on the bench databases, run by Nova 34.0.0 in its venv."""

from __future__ import annotations

import json
import pathlib
import subprocess

from .servers import REPO
from .stats import Stats

SIDE = pathlib.Path(__file__).with_name("nova_side.py")

# Nova's cache for host zones: its default (the in-process oslo_cache.dict backend, used when
# [cache] is not enabled) sweeps every key on every write, so one listing is quadratic in the hosts
# outside AZ aggregates; and it is not thread-safe, so with several cells read at once in threading
# mode a cell can fail and drop out of the answer. Hence two set-ups: that default with one cell
# at a time, and [cache] enabled with dogpile.cache.memory (cells in parallel, as shipped).
CACHES = {  # name: (lines of [DEFAULT], further sections)
    "dict": ("cell_worker_thread_pool_size = 1", ""),
    "memory": ("", "[cache]\nenabled = True\nbackend = dogpile.cache.memory\n"),
}


def nova_python() -> pathlib.Path:
    """The python of the shared OpenStack venv (tests/conformance/oracles.py), which holds Nova
    34.0.0; while another run is installing it, oracles.ensure() waits for that run rather than
    wiping its venv with a second install."""
    import sys

    sys.path.insert(0, str(REPO / "tests" / "conformance"))
    import oracles

    return oracles.ensure()


def write_nova_conf(path: pathlib.Path, api_url: str, cell_url: str, cache: str) -> pathlib.Path:
    default, sections = CACHES[cache]
    path.write_text(f"""[DEFAULT]
transport_url = fake://
service_down_time = 60
report_interval = 10
{default}

[database]
connection = {cell_url}

[api_database]
connection = {api_url}

{sections}""")
    return path


def list_services(
    python: pathlib.Path, conf: pathlib.Path, repeat: int, warmup: int = 1, timeout: float = 1200
) -> dict:
    """Nova's timings: {"stats": Stats, "services": N, "up": N, "bytes": N}."""
    done = subprocess.run(
        [str(python), "-I", str(SIDE), "--config-file", str(conf), "--repeat", str(repeat), "--warmup", str(warmup)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"Nova's listing failed: {done.stdout[-1000:]} {done.stderr[-2000:]}")
    result = json.loads(lines[-1])
    result["stats"] = Stats.of(result.pop("seconds"))
    return result
