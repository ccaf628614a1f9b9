"""Both sides of the Ironic comparison as Conductor verdicts: real Ironic (ironic_judge.py in the
oracle venv, one long-lived process) and the exporter's `list --format json --project ironic` and
/metrics at the same frozen instant."""
from __future__ import annotations

import contextlib
import datetime
import io
import json
import pathlib
import select
import subprocess
import time
from dataclasses import dataclass

import freezegun
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter import config
from exporter.cli import database_driver, main
from exporter.collector import SnapshotCollector
from exporter.snapshot import Reader
from helpers import EPOCH, to_us

JUDGE = pathlib.Path(__file__).with_name("ironic_judge.py")
ANSWER_TIMEOUT = 120  # seconds
BINARY = "ironic-conductor"


@dataclass(frozen=True)
class Conductor:
    host: str
    state: str                  # up | down (Ironic: alive)
    online: bool | None
    conductor_group: str
    drivers: tuple[str, ...]
    updated_at: str | None      # naive UTC ISO 8601
    created_at: str | None = None  # not part of /metrics
    id: int | None = None          # not part of /metrics


JSON_FIELDS = ("state", "online", "conductor_group", "drivers", "updated_at", "created_at", "id")
METRIC_FIELDS = ("state", "online", "conductor_group", "drivers", "updated_at")


def naive_iso(text: str | None) -> str | None:
    """'2026-01-01T11:59:00+00:00' or '...Z' -> '2026-01-01T11:59:00'."""
    if text is None:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None).isoformat()


# -- Ironic ------------------------------------------------------------------------------------------

class IronicJudge:
    def __init__(self, oracle_python: pathlib.Path, stderr_path: pathlib.Path):
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "w")
        self.proc = subprocess.Popen([str(oracle_python), str(JUDGE)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr, text=True, encoding="utf-8")

    def _fail(self, why: str):
        tail = self.stderr_path.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"Ironic judge {why}; its stderr ends with:\n{tail}")

    def ask(self, database: str, conf: pathlib.Path, now: datetime.datetime) -> dict:
        """Ironic's raw answer (see ironic_judge.py), its clock checked to be frozen at `now`."""
        request = {"database": database, "config": str(conf), "now": now.isoformat()}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], ANSWER_TIMEOUT)
        if not ready:
            self.proc.kill()  # a late answer would be taken for the next request's
            self._fail(f"gave no answer within {ANSWER_TIMEOUT}s")
        line = self.proc.stdout.readline()
        if not line:
            self._fail(f"exited with {self.proc.wait()}")
        answer = json.loads(line)
        if "failed" in answer:
            raise RuntimeError(f"Ironic judge failed on {request['config']} at {request['now']}:\n{answer['failed']}")
        assert answer["clock"] == now.isoformat(), f"Ironic's clock was {answer['clock']}, not {now.isoformat()}"
        return answer

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


def verdicts(answer: dict) -> list[Conductor]:
    """Ironic's conductors; an API failure is an error here (see test_ironic_crashes.py)."""
    assert answer["status"] == 200, f"GET /v1/conductors answered {answer['status']}: {answer['error']}"
    assert answer["objects_error"] is None, answer["objects_error"]
    flags = {o["hostname"]: o for o in answer["objects"]}
    return [Conductor(c["hostname"], "up" if c["alive"] else "down", flags[c["hostname"]]["online"],
                      c["conductor_group"], tuple(c["drivers"]), naive_iso(c["updated_at"]),
                      naive_iso(c["created_at"]), flags[c["hostname"]]["id"])
            for c in answer["conductors"]]


# -- the exporter ------------------------------------------------------------------------------------

def exporter_args(empty_conf: pathlib.Path, ironic_conf: pathlib.Path) -> list[str]:
    """Only Ironic configured: an empty --config-file keeps oslo.config from finding a nova.conf."""
    return ["--config-file", str(empty_conf), "--ironic-config_file", str(ironic_conf)]


def listed(args: list[str], now: datetime.datetime) -> tuple[datetime.datetime, list[dict]]:
    """`openstack-service-exporter ARGS list --format json --project ironic`, in process under
    freezegun. Returns the instant the exporter really saw (freezegun's time_ns comes from a float
    of seconds and can land 1 µs early) with its records."""
    out, err = io.StringIO(), io.StringIO()
    with freezegun.freeze_time(now), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        seen = EPOCH + datetime.timedelta(microseconds=time.time_ns() // 1000)
        code = main([*args, "list", "--format", "json", "--project", "ironic"])
    assert code == 0, f"list exited with {code}: {err.getvalue()}"
    return seen, json.loads(out.getvalue())


def from_listing(records: list[dict]) -> list[Conductor]:
    return [Conductor(r["host"], r["state"], r["online"], r["conductor_group"], tuple(r["drivers"]),
                      naive_iso(r["updated_at"]), naive_iso(r["created_at"]), r["id"]) for r in records]


def listing_problems(records: list[dict], now: datetime.datetime) -> list[str]:
    """What CONTRACT fixes for every Ironic record, and the frozen clock: age = now - updated_at."""
    out = []
    for r in records:
        fixed = {k: r.get(k) for k in ("project", "cell", "binary", "zone", "status")}
        if fixed != {"project": "ironic", "cell": "", "binary": BINARY, "zone": "", "status": "enabled"}:
            out.append(f"{r.get('host')}: {fixed}")
        beat = naive_iso(r["updated_at"])
        age = None if beat is None else (now - datetime.datetime.fromisoformat(beat)).total_seconds()
        if r["heartbeat_age_seconds"] != age:
            out.append(f"clock not frozen: {r['host']} age {r['heartbeat_age_seconds']} != {age}")
    return out


def scraped(args: list[str], now: datetime.datetime) -> str:
    """The exposition /metrics would serve at `now`: a reading with that clock, rendered by the
    exporter's collector on its own registry."""
    opts = config.new_config()
    config.parse(opts, args)
    cfg = config.settings_from(opts)
    now_us = to_us(now)
    reader = Reader(cfg, clock=lambda: now_us)
    try:
        snapshot = reader.read()
    finally:
        reader.close()
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: snapshot, cfg, lambda: now_us, database_driver(cfg)))
    return generate_latest(registry).decode()


def ironic_series(text: str) -> dict[str, dict[str, dict]]:
    """{family: {host: labels with the value under "value"}} of the Ironic per-service series."""
    out: dict[str, dict[str, dict]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("project") == "ironic" and "host" in sample.labels:
                out.setdefault(sample.name, {})[sample.labels["host"]] = dict(sample.labels, value=sample.value)
    return out


def from_exposition(text: str) -> tuple[list[Conductor], list[str]]:
    """Conductor verdicts read back from the exposition, and what breaks CONTRACT's fixed labels."""
    series = ironic_series(text)
    verdicts_, problems = [], []
    for host, up in series.get("service_up", {}).items():
        info = series["service_info"][host]
        seen = series.get("service_last_seen_timestamp_seconds", {}).get(host)
        updated = None if seen is None else (EPOCH + datetime.timedelta(seconds=seen["value"])).isoformat()
        verdicts_.append(Conductor(host, "up" if up["value"] == 1 else "down",
                                   series["service_online"][host]["value"] == 1, info["conductor_group"],
                                   tuple(info["drivers"].split(",")) if info["drivers"] else (), updated))
        fixed = {k: up.get(k) for k in ("cell", "binary", "zone")}
        if fixed != {"cell": "", "binary": BINARY, "zone": ""} or series["service_disabled"][host]["value"] != 0:
            problems.append(f"{host}: {fixed}, service_disabled {series['service_disabled'][host]['value']}")
    return verdicts_, problems


# -- the comparison ----------------------------------------------------------------------------------

def differences(ironic: list[Conductor], exporter: list[Conductor], compared: tuple[str, ...],
                context=lambda host: "") -> list[str]:
    """Every host on which the two sides disagree, both rows side by side."""
    left, right = {v.host: v for v in ironic}, {v.host: v for v in exporter}
    assert len(left) == len(ironic) and len(right) == len(exporter), "a hostname listed twice"
    out = []
    for host in sorted(left.keys() | right.keys()):
        a, b = left.get(host), right.get(host)
        if a is not None and b is not None and all(getattr(a, f) == getattr(b, f) for f in compared):
            continue
        lines = [f"  {host!r}:", f"    {'field':<16} {'Ironic 39.0.0':<32} exporter"]
        for name in compared:
            x = "(not listed)" if a is None else repr(getattr(a, name))
            y = "(not listed)" if b is None else repr(getattr(b, name))
            lines.append(f"    {name:<16} {x:<32} {y}{'' if x == y else '   <== differs'}")
        extra = context(host)
        if extra:
            lines.append(f"    row: {extra}")
        out.append("\n".join(lines))
    return out
