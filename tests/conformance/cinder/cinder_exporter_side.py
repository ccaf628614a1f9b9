"""Asks the exporter about a Cinder cloud at a frozen instant, through its two outputs, with Cinder
configured the way an operator does: the exporter's own config file holds only

    [cinder]
    config_file = <the cloud's cinder.conf>

(no Nova database: Nova is not read). `list --format json --project cinder` and /metrics go through
exporter_side.py, the path the Nova suite uses.
"""

from __future__ import annotations

import datetime
import pathlib
from dataclasses import dataclass

import exporter_side
from prometheus_client.parser import text_string_to_metric_families

PROJECT = "cinder"


def write_exporter_conf(path: pathlib.Path, cinder_conf: pathlib.Path) -> pathlib.Path:
    path.write_text(f"[cinder]\nconfig_file = {cinder_conf}\n")
    return path


def listed(exporter_conf: pathlib.Path, now: datetime.datetime) -> tuple[datetime.datetime, list[dict]]:
    """The instant the exporter saw (see exporter_side.listed), and its Cinder records."""
    return exporter_side.listed(exporter_conf, now, list_options=("--project", PROJECT))


@dataclass(frozen=True)
class Scraped:
    services: dict[tuple, dict]  # (binary, host) -> {family: (labels, value)}
    health: dict[str, float]  # health family -> value of its project="cinder" series


def scraped(exporter_conf: pathlib.Path, now: datetime.datetime) -> Scraped:
    """/metrics at `now`, read back with prometheus_client's parser: Cinder's series only."""
    services: dict[tuple, dict] = {}
    health: dict[str, float] = {}
    for family in text_string_to_metric_families(exporter_side.scraped(exporter_conf, now)):
        for sample in family.samples:
            labels = dict(sample.labels)
            if labels.get("project") != PROJECT:
                continue
            if "binary" in labels:
                key = (labels["binary"], labels["host"])
                assert sample.name not in services.get(key, {}), f"two {sample.name} series for {key}"
                services.setdefault(key, {})[sample.name] = (labels, sample.value)
            else:
                health[sample.name] = sample.value
    return Scraped(services, health)
