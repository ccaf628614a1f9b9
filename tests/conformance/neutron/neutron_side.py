"""Both sides of the Neutron comparison, as rows of one shape: Neutron's answer (neutron_judge.py in
the oracle venv, one long-lived process) and the exporter's `list --format json --project neutron`
and /metrics at a frozen instant."""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
from dataclasses import dataclass

import exporter_side
from helpers import EPOCH
from judge_process import JudgeProcess
from prometheus_client.parser import text_string_to_metric_families
from verdicts import naive_iso

JUDGE_NAME = "Neutron 29.0.0"


class NeutronJudge(JudgeProcess):
    def __init__(self, python: pathlib.Path, stderr_path: pathlib.Path):
        super().__init__("Neutron", python, pathlib.Path(__file__).with_name("neutron_judge.py"), stderr_path)

    def ask(self, config_dir: pathlib.Path, now: datetime.datetime) -> dict:
        """Neutron's raw answer: {"agents": [...], "utcnow", "agent_down_time", "mechanism_drivers"}."""
        return self._request({"config_dir": str(config_dir), "now": now.isoformat()})


@dataclass(frozen=True)
class Agent:
    binary: str
    host: str
    state: str  # up | down  (Neutron's alive)
    status: str  # enabled | disabled  (Neutron's admin_state_up)
    zone: str  # "" for a NULL availability_zone
    agent_type: str
    topic: str
    id: str
    started_at: str  # naive UTC ISO 8601, whole seconds
    admin_state_up: bool | None = None  # list --format json only
    heartbeat_timestamp: str | None = None  # list --format json only
    created_at: str | None = None  # list --format json only

    @property
    def key(self) -> tuple:
        return (self.binary, self.host)


METRIC_FIELDS = ("state", "status", "zone", "agent_type", "topic", "id", "started_at")
LIST_FIELDS = METRIC_FIELDS + ("admin_state_up", "heartbeat_timestamp", "created_at")


def from_neutron(answer: dict) -> list[Agent]:
    return [
        Agent(
            a["binary"],
            a["host"],
            "up" if a["alive"] else "down",
            "enabled" if a["admin_state_up"] else "disabled",
            a["availability_zone"] or "",
            a["agent_type"],
            a["topic"],
            a["id"],
            naive_iso(a["started_at"]),
            a["admin_state_up"],
            naive_iso(a["heartbeat_timestamp"]),
            naive_iso(a["created_at"]),
        )
        for a in answer["agents"]
    ]


def for_metrics(agents: list[Agent]) -> list[Agent]:
    """Only what /metrics shows."""
    return [dataclasses.replace(a, admin_state_up=None, heartbeat_timestamp=None, created_at=None) for a in agents]


# -- the exporter ------------------------------------------------------------------------------------


def options(files: list[pathlib.Path]) -> tuple[str, ...]:
    """The exporter's command-line options naming neutron-server's files, in their order."""
    return tuple(arg for f in files for arg in ("--neutron-config_file", str(f)))


def listed(
    nova_conf: pathlib.Path, files: list[pathlib.Path], now: datetime.datetime
) -> tuple[datetime.datetime, list[dict]]:
    """`list --format json --project neutron`; `nova_conf` is an empty file, so no Nova is read."""
    return exporter_side.listed(nova_conf, now, options(files), ("--project", "neutron"))


def from_listing(records: list[dict]) -> list[Agent]:
    assert all(r["project"] == "neutron" and r["cell"] == "" for r in records), records[:3]
    return [
        Agent(
            r["binary"],
            r["host"],
            r["state"],
            r["status"],
            r["zone"],
            r["agent_type"],
            r["topic"],
            r["id"],
            naive_iso(r["started_at"]),
            r["admin_state_up"],
            naive_iso(r["heartbeat_timestamp"]),
            naive_iso(r["created_at"]),
        )
        for r in records
    ]


def scraped(nova_conf: pathlib.Path, files: list[pathlib.Path], now: datetime.datetime) -> str:
    return exporter_side.scraped(nova_conf, now, options(files))


def _at(seconds: float) -> str:
    return (EPOCH + datetime.timedelta(seconds=seconds)).isoformat()


def neutron_samples(text: str) -> dict[str, list[tuple[dict, float]]]:
    """Every sample with project="neutron", by name."""
    out: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("project") == "neutron":
                out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def from_exposition(text: str) -> list[Agent]:
    """Per-agent rows read back from the exposition with prometheus_client's parser."""
    samples = neutron_samples(text)

    def by_key(name: str) -> dict[tuple, tuple[dict, float]]:
        series = {(labels["binary"], labels["host"]): (labels, value) for labels, value in samples.get(name, [])}
        assert len(series) == len(samples.get(name, [])), f"{name}: (binary, host) not unique"
        return series

    up, disabled, info, started = (
        by_key(n) for n in ("service_up", "service_disabled", "service_info", "service_started_timestamp_seconds")
    )
    out = []
    for key, (labels, value) in up.items():
        assert labels["cell"] == "", labels
        info_labels = info[key][0]
        out.append(
            Agent(
                *key,
                state="up" if value == 1 else "down",
                status="disabled" if disabled[key][1] == 1 else "enabled",
                zone=labels["zone"],
                agent_type=info_labels["agent_type"],
                topic=info_labels["topic"],
                id=info_labels["id"],
                started_at=_at(started[key][1]),
            )
        )
    return out


def down_time(text: str) -> float | None:
    """service_down_time_seconds{project="neutron"}: the agent_down_time the exporter applies."""
    values = [value for _, value in neutron_samples(text).get("service_down_time_seconds", [])]
    return values[0] if len(values) == 1 else None
