"""The naive stack: the exporter as one would first write it, to measure ours against.

SQLAlchemy Core over PyMySQL reading DATETIME columns, Nova's rule in datetime arithmetic,
prometheus_client's GaugeMetricFamily / CounterMetricFamily / InfoMetricFamily, generate_latest,
and gzip at level 6 (what prometheus_client's own HTTP handler uses). The same families, labels
and zones as the exporter's, so that both do the same work.
"""

from __future__ import annotations

import datetime
import gzip

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.exposition import generate_latest

LABELS = ["cell", "binary", "host", "zone"]
SERVICES_SQL = sa.text(
    "SELECT host, `binary`, topic, report_count, disabled, disabled_reason, forced_down, version, uuid,"
    " created_at, last_seen_up FROM services WHERE deleted = 0"
    " AND (`binary` IS NULL OR `binary` NOT IN ('nova-osapi_compute', 'nova-metadata')) ORDER BY id"
)
CELLS_SQL = sa.text("SELECT name, database_connection FROM cell_mappings ORDER BY id")
ZONES_SQL = sa.text(
    "SELECT h.host, m.value FROM aggregate_hosts h JOIN aggregate_metadata m ON m.aggregate_id = h.aggregate_id"
    " WHERE m.`key` = 'availability_zone'"
)
EPOCH = datetime.datetime(1970, 1, 1)


class _Registry:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


class NaiveExporter:
    def __init__(self, api_url: str, down_time: int = 60):
        self.api = sa.create_engine(api_url)
        self.down_time = datetime.timedelta(seconds=down_time)
        self.cells: dict[str, sa.Engine] = {}

    def close(self) -> None:
        for engine in [self.api, *self.cells.values()]:
            engine.dispose()

    def scrape(self) -> bytes:
        with self.api.connect() as conn:
            mappings = conn.execute(CELLS_SQL).all()
            zones: dict[str, set[str]] = {}
            for host, zone in conn.execute(ZONES_SQL):
                zones.setdefault(host, set()).add(zone)
        families = [
            GaugeMetricFamily("service_up", "1 when Nova would call the service up.", labels=LABELS),
            GaugeMetricFamily("service_heartbeat_age_seconds", "Seconds since the heartbeat.", labels=LABELS),
            GaugeMetricFamily("service_last_seen_timestamp_seconds", "Unix time of the heartbeat.", labels=LABELS),
            GaugeMetricFamily("service_disabled", "1 when disabled.", labels=LABELS),
            GaugeMetricFamily("service_forced_down", "1 when forced down.", labels=LABELS),
        ]
        reports = CounterMetricFamily("service_reports", "Heartbeats written.", labels=LABELS)
        info = InfoMetricFamily(
            "service", "Descriptive fields.", labels=LABELS + ["topic", "uuid", "version", "disabled_reason"]
        )
        for name, url in mappings:
            engine = self.cells.get(url)
            if engine is None:
                engine = self.cells[url] = sa.create_engine(url)
            with engine.connect() as conn:
                rows = conn.execute(SERVICES_SQL).all()
            now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
            for r in rows:
                zone = (",".join(sorted(zones.get(r.host, ()))) or "nova") if r.topic == "compute" else "internal"
                labels = [name, r.binary or "", r.host or "", zone]
                beat = r.last_seen_up or r.created_at
                up = not r.forced_down and beat is not None and abs(now - beat) <= self.down_time
                families[0].add_metric(labels, 1.0 if up else 0.0)
                if beat is not None:
                    families[1].add_metric(labels, (now - beat).total_seconds())
                    families[2].add_metric(labels, (beat - EPOCH).total_seconds())
                families[3].add_metric(labels, 1.0 if r.disabled else 0.0)
                families[4].add_metric(labels, 1.0 if r.forced_down else 0.0)
                reports.add_metric(labels, r.report_count)
                info.add_metric(
                    labels + [r.topic or "", r.uuid or "", str(r.version or ""), r.disabled_reason or ""], {}
                )
        body = generate_latest(_Registry(families + [reports, info]))
        return gzip.compress(body, compresslevel=6)
