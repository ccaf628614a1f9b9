"""Snapshot -> Prometheus metric families (prometheus_client), built fresh for every scrape: the
reference rendering, which the fast writer (exposition.py) matches byte for byte.

Example exposition (default, empty prefix; tests/golden/ has whole ones):

    service_up{binary="...-compute",cell="cell1",host="cmp-01",project="...",zone="az1"} 1.0
    service_exporter_database_up{cell="cell1",project="..."} 1.0
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric

from . import __version__
from . import families as declared
from .config import Settings
from .families import COUNT, FLAG, INFO_HELP, INFO_NAME, SERVICE_LABELS
from .snapshot import Snapshot
from .sources import COMPATIBILITY
from .sources.base import MICROS, Configured, Judged

Groups = list[tuple[Configured, list[Judged]]]  # (configured source, its judged services)


def judged_services(snapshot: Snapshot) -> Groups:
    """Each source's verdict on its rows, as of the instant the rows were read."""
    return [(reading.source, reading.source.judge(reading, snapshot.now)) for reading in snapshot.readings]


def service_labels(j: Judged) -> list[str]:
    return [j.project, j.cell, j.binary or "", j.host or "", j.zone]


def _sample(kind: str, value: float | None) -> float | None:
    if kind == FLAG:
        return 1.0 if value else 0.0
    if kind == COUNT:
        return value
    return None if value is None else value / MICROS


def _text(value: object) -> str:
    return "" if value is None else str(value)


def service_families(groups: Groups, prefix: str) -> Iterator[Metric]:
    for family in declared.of_groups(groups):
        kind = CounterMetricFamily if family.kind == COUNT else GaugeMetricFamily
        out = kind(prefix + family.name, family.help, labels=SERVICE_LABELS)
        for configured, judged in groups:
            values = family.values(configured.source.project, judged, [j.row for j in judged])
            for j, value in zip(judged, values or ()):
                sample = _sample(family.kind, value)
                if sample is not None:
                    out.add_metric(service_labels(j), sample)
        yield out
    info = InfoMetricFamily(prefix + INFO_NAME, INFO_HELP, labels=SERVICE_LABELS)
    for configured, judged in groups:
        extras = configured.source.info_labels
        for j in judged:
            info.add_metric(service_labels(j), {label.name: _text(label.value(j.row)) for label in extras})
    yield info


def health_families(
    snapshot: Snapshot, settings: Settings, prefix: str, render_now: int, driver: str
) -> Iterator[Metric]:
    p = prefix + "service_exporter_"
    down_time = GaugeMetricFamily(
        prefix + "service_down_time_seconds",
        "Threshold in use by each project's rule, seconds: the option that project's API "
        "reads, as that project applies it.",
        labels=["project"],
    )
    for reading in snapshot.readings:
        down_time.add_metric([reading.project], reading.source.down_time)
    yield down_time

    up = GaugeMetricFamily(
        p + "database_up",
        "1 when this database answered in this scrape; 0 when it failed or timed out (its services are then absent).",
        labels=["project", "cell"],
    )
    duration = GaugeMetricFamily(
        p + "query_duration_seconds",
        "Seconds spent connecting to and reading this database in this scrape.",
        labels=["project", "cell"],
    )
    skew = GaugeMetricFamily(
        p + "clock_skew_seconds",
        "This exporter's UTC clock minus the database server's (UTC_TIMESTAMP), "
        "read around one query; large values make heartbeat ages wrong.",
        labels=["project", "cell"],
    )
    duplicates = GaugeMetricFamily(
        p + "duplicate_rows",
        "Listed service rows not shown because another row of the database had the same binary and host.",
        labels=["project", "cell"],
    )
    for db in snapshot.databases:
        up.add_metric([db.project, db.cell], 1.0 if db.up else 0.0)
        duration.add_metric([db.project, db.cell], db.duration)
        if db.up and db.skew is not None:
            skew.add_metric([db.project, db.cell], db.skew)
        if db.up and db.lists_services:
            duplicates.add_metric([db.project, db.cell], db.duplicates)
    yield up
    yield duration
    yield skew
    yield duplicates

    partial = GaugeMetricFamily(
        p + "source_partial",
        "1 when a project's answer lacks a part of its services, for the reason given "
        "(they live where this exporter does not read); 0 when that part is read.",
        labels=["project", "reason"],
    )
    for reading in snapshot.readings:
        for reason, lacking in reading.partial.items():
            partial.add_metric([reading.project, reason], 1.0 if lacking else 0.0)
    yield partial

    for reading in snapshot.readings:
        yield from reading.source.health_families(reading, prefix)
    yield GaugeMetricFamily(
        p + "snapshot_age_seconds",
        "Age of the database reading this scrape shows; above 0 only when "
        "[exporter] min_interval let the scrape reuse an earlier reading.",
        value=max(0.0, (render_now - snapshot.now) / MICROS),
    )
    build = InfoMetricFamily(
        p + "build", "Version of the exporter and the MySQL driver it uses.", labels=["version", "driver"]
    )
    build.add_metric([__version__, driver], {})
    yield build
    yield from compatibility_families(snapshot, settings)


def compatibility_families(snapshot: Snapshot, settings: Settings) -> Iterator[Metric]:
    """Another exporter's families, from the same reading ([exporter] compatibility; off by default).
    Here, not in the fast writer, since few use it: both writers render them per scrape."""
    if settings.compatibility:
        yield from COMPATIBILITY[settings.compatibility](judged_services(snapshot), settings.compatibility_prefix)


def families(snapshot: Snapshot, settings: Settings, render_now: int, driver: str) -> list[Metric]:
    prefix = settings.metric_prefix
    return [
        *service_families(judged_services(snapshot), prefix),
        *health_families(snapshot, settings, prefix, render_now, driver),
    ]
