"""Both sides of the Ironic comparison as Conductor verdicts: real Ironic (ironic_judge.py in the
oracle venv, one long-lived process) and the exporter's `list --format json --project ironic` and
/metrics at the same frozen instant."""

from __future__ import annotations

import datetime
import pathlib
from dataclasses import dataclass

import exporter_side
import verdicts as shared
from helpers import EPOCH
from judge_process import JudgeProcess
from prometheus_client.parser import text_string_to_metric_families
from verdicts import naive_iso

JUDGE = pathlib.Path(__file__).with_name("ironic_judge.py")
BINARY = "ironic-conductor"


@dataclass(frozen=True)
class Conductor:
    host: str
    state: str  # up | down (Ironic: alive)
    online: bool | None
    conductor_group: str
    drivers: tuple[str, ...]
    updated_at: str | None  # naive UTC ISO 8601
    created_at: str | None = None  # not part of /metrics
    id: int | None = None  # not part of /metrics


JSON_FIELDS = ("state", "online", "conductor_group", "drivers", "updated_at", "created_at", "id")
METRIC_FIELDS = ("state", "online", "conductor_group", "drivers", "updated_at")


# -- Ironic ------------------------------------------------------------------------------------------


class IronicJudge(JudgeProcess):
    def __init__(self, oracle_python: pathlib.Path, stderr_path: pathlib.Path):
        super().__init__("Ironic", oracle_python, JUDGE, stderr_path)

    def ask(self, database: str, conf: pathlib.Path, now: datetime.datetime) -> dict:
        """Ironic's raw answer (see ironic_judge.py), its clock checked to be frozen at `now`."""
        answer = self._request({"database": database, "config": str(conf), "now": now.isoformat()})
        assert answer["clock"] == now.isoformat(), f"Ironic's clock was {answer['clock']}, not {now.isoformat()}"
        return answer


def verdicts(answer: dict) -> list[Conductor]:
    """Ironic's conductors; an API failure is an error here (see test_ironic_crashes.py)."""
    assert answer["status"] == 200, f"GET /v1/conductors answered {answer['status']}: {answer['error']}"
    assert answer["objects_error"] is None, answer["objects_error"]
    flags = {o["hostname"]: o for o in answer["objects"]}
    return [
        Conductor(
            c["hostname"],
            "up" if c["alive"] else "down",
            flags[c["hostname"]]["online"],
            c["conductor_group"],
            tuple(c["drivers"]),
            naive_iso(c["updated_at"]),
            naive_iso(c["created_at"]),
            flags[c["hostname"]]["id"],
        )
        for c in answer["conductors"]
    ]


# -- the exporter ------------------------------------------------------------------------------------


def write_exporter_conf(path: pathlib.Path, ironic_conf: pathlib.Path) -> pathlib.Path:
    """The exporter's own config file as an operator writes it for Ironic alone: no Nova database,
    so Nova is not read; ironic.conf is read in place."""
    path.write_text(f"[ironic]\nconfig_file = {ironic_conf}\n")
    return path


def listed(exporter_conf: pathlib.Path, now: datetime.datetime) -> tuple[datetime.datetime, list[dict]]:
    """`openstack-service-exporter --config-file CONF list --format json --project ironic` under
    freezegun, and the instant it really saw (exporter_side.listed)."""
    return exporter_side.listed(exporter_conf, now, list_options=("--project", "ironic"))


def from_listing(records: list[dict]) -> list[Conductor]:
    return [
        Conductor(
            r["host"],
            r["state"],
            r["online"],
            r["conductor_group"],
            tuple(r["drivers"]),
            naive_iso(r["updated_at"]),
            naive_iso(r["created_at"]),
            r["id"],
        )
        for r in records
    ]


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


scraped = exporter_side.scraped  # scraped(exporter_conf, now): the exposition /metrics would serve at `now`


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
        verdicts_.append(
            Conductor(
                host,
                "up" if up["value"] == 1 else "down",
                series["service_online"][host]["value"] == 1,
                info["conductor_group"],
                tuple(info["drivers"].split(",")) if info["drivers"] else (),
                updated,
            )
        )
        fixed = {k: up.get(k) for k in ("cell", "binary", "zone")}
        if fixed != {"cell": "", "binary": BINARY, "zone": ""} or series["service_disabled"][host]["value"] != 0:
            problems.append(f"{host}: {fixed}, service_disabled {series['service_disabled'][host]['value']}")
    return verdicts_, problems


# -- the comparison ----------------------------------------------------------------------------------


def differences(
    ironic: list[Conductor], exporter: list[Conductor], compared: tuple[str, ...], context=lambda host: ""
) -> list[str]:
    """Every host on which the two sides disagree, both rows side by side (verdicts.differences)."""
    return shared.differences(
        ironic, exporter, compared, lambda key: context(*key), key=lambda v: (v.host,), reference="Ironic 39.0.0"
    )
