"""Snapshot -> Prometheus metric families, built fresh for every scrape.

Example exposition (default, empty prefix):

    service_up{binary="nova-compute",cell="cell1",host="cmp-01",zone="az1"} 1.0
    service_heartbeat_age_seconds{binary="nova-compute",cell="cell1",host="cmp-01",zone="az1"} 4.2
    service_exporter_database_up{cell="cell1"} 1.0
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from . import __version__
from .config import Settings
from .snapshot import Snapshot
from .verdict import MICROS, Judged, effective_down_time, judge

SERVICE_LABELS = ("cell", "binary", "host", "zone")


def judged_services(snapshot: Snapshot, settings: Settings) -> list[Judged]:
    """Nova's verdict on every row of the snapshot, as of the instant the rows were read."""
    return judge(
        snapshot.rows, snapshot.now,
        effective_down_time(settings.service_down_time, settings.report_interval),
        snapshot.rules, snapshot.host_zones,
        settings.default_availability_zone, settings.internal_service_availability_zone,
    )


def service_labels(j: Judged) -> list[str]:
    row = j.row
    return [row.cell, row.binary or "", row.host or "", j.zone]


@dataclass(frozen=True)
class ServiceFamily:
    """A per-service gauge: name, HELP, and the value of one judged row (None: no sample)."""

    name: str
    help: str
    value: Callable[[Judged], float | None]


def _age(j: Judged) -> float | None:
    return None if j.age_us is None else j.age_us / MICROS


def _last_seen(j: Judged) -> float | None:
    return None if j.heartbeat is None else j.heartbeat / MICROS


SERVICE_GAUGES = (
    ServiceFamily("service_up",
                  "1 when Nova would call the service up: not forced down and its last heartbeat "
                  "(last_seen_up, else created_at) at most service_down_time seconds from now; else 0.",
                  lambda j: 1.0 if j.up else 0.0),
    ServiceFamily("service_heartbeat_age_seconds",
                  "Seconds from the heartbeat Nova judges by to now, on this exporter's UTC clock; "
                  "negative when the heartbeat is in the future (clock skew between Nova hosts).",
                  _age),
    ServiceFamily("service_last_seen_timestamp_seconds",
                  "Unix time of the heartbeat Nova judges by (services.last_seen_up, else created_at).",
                  _last_seen),
    ServiceFamily("service_disabled",
                  "1 when the service is disabled (services.disabled): no new work, but it may be up.",
                  lambda j: 1.0 if j.row.disabled else 0.0),
    ServiceFamily("service_forced_down",
                  "1 when an operator forced the service down (services.forced_down): down whatever its heartbeat.",
                  lambda j: 1.0 if j.row.forced_down else 0.0),
)


def service_families(services: list[Judged], prefix: str) -> Iterable:
    for spec in SERVICE_GAUGES:
        family = GaugeMetricFamily(prefix + spec.name, spec.help, labels=SERVICE_LABELS)
        for j in services:
            value = spec.value(j)
            if value is not None:
                family.add_metric(service_labels(j), value)
        yield family

    reports = CounterMetricFamily(prefix + "service_reports",
                                  "Heartbeats the service has written since it was created (services.report_count).",
                                  labels=SERVICE_LABELS)
    info = InfoMetricFamily(prefix + "service",
                            "Descriptive fields of the service row: topic, uuid, RPC version, disabled reason.",
                            labels=SERVICE_LABELS + ("topic", "uuid", "version", "disabled_reason"))
    for j in services:
        labels = service_labels(j)
        row = j.row
        reports.add_metric(labels, row.report_count)
        info.add_metric(labels + [row.topic or "", row.uuid or "",
                                  "" if row.version is None else str(row.version),
                                  row.disabled_reason or ""], {})
    yield reports
    yield info


def health_families(snapshot: Snapshot, settings: Settings, prefix: str, render_now: int,
                    driver: str) -> Iterable:
    p = prefix + "service_exporter_"
    down_time = GaugeMetricFamily(prefix + "service_down_time_seconds",
                                  "Threshold in use: [DEFAULT] service_down_time of nova.conf, or "
                                  "int(2.5 x report_interval) when the down time is not above the interval.",
                                  value=effective_down_time(settings.service_down_time, settings.report_interval))
    yield down_time

    databases = snapshot.cells + ([snapshot.api] if snapshot.api else [])
    up = GaugeMetricFamily(p + "database_up",
                           "1 when this database answered in this scrape; 0 when it failed or timed out "
                           "(its services are then absent). cell=\"(api_database)\" is the API database.",
                           labels=["cell"])
    duration = GaugeMetricFamily(p + "query_duration_seconds",
                                 "Seconds spent connecting to and reading this database in this scrape.",
                                 labels=["cell"])
    for db in databases:
        up.add_metric([db.cell], 1.0 if db.up else 0.0)
        duration.add_metric([db.cell], db.duration)
    yield up
    yield duration

    skew = GaugeMetricFamily(p + "clock_skew_seconds",
                             "This exporter's UTC clock minus the cell database server's (UTC_TIMESTAMP), "
                             "read around one query; large values make heartbeat ages wrong.",
                             labels=["cell"])
    duplicates = GaugeMetricFamily(p + "duplicate_rows",
                                   "Listed service rows dropped because another row of the cell had the same "
                                   "binary and host (only possible with NULL host or binary).",
                                   labels=["cell"])
    for cell in snapshot.cells:
        if cell.up:
            skew.add_metric([cell.cell], cell.skew or 0.0)
            duplicates.add_metric([cell.cell], cell.duplicates)
    yield skew
    yield duplicates

    yield GaugeMetricFamily(p + "zones_known",
                            "1 when compute zones were read from the API database's aggregates in this scrape; "
                            "0 when they are the last zones known or default_availability_zone.",
                            value=1.0 if snapshot.zones_known else 0.0)
    yield GaugeMetricFamily(p + "snapshot_age_seconds",
                            "Age of the database reading this scrape shows; above 0 only when "
                            "[exporter] min_interval let the scrape reuse an earlier reading.",
                            value=max(0.0, (render_now - snapshot.now) / MICROS))
    build = InfoMetricFamily(p + "build", "Version of the exporter and the MySQL driver it uses.",
                             labels=["version", "driver"])
    build.add_metric([__version__, driver], {})
    yield build


def families(snapshot: Snapshot, settings: Settings, render_now: int, driver: str) -> list:
    prefix = settings.metric_prefix
    return [*service_families(judged_services(snapshot, settings), prefix),
            *health_families(snapshot, settings, prefix, render_now, driver)]


class SnapshotCollector(Collector):
    """For a CollectorRegistry: every collect() takes a snapshot (through `get_snapshot`) and builds
    every family anew."""

    def __init__(self, get_snapshot: Callable[[], Snapshot], settings: Settings,
                 clock: Callable[[], int], driver: str):
        self._get_snapshot = get_snapshot
        self._settings = settings
        self._clock = clock
        self._driver = driver

    def collect(self):
        return families(self._get_snapshot(), self._settings, self._clock(), self._driver)
