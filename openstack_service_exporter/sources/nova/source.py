"""Nova as a source. Its options are read from nova.conf (given with --config-file) with Nova's own names, groups and
defaults (nova/conf/service.py, servicegroup.py, availability_zone.py, database.py; [cache] from oslo.cache
itself, with servicegroup_driver = mc), and Nova as a configured source."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING

from oslo_config import cfg
from prometheus_client.core import GaugeMetricFamily

from ..base import FLAG, InfoLabel, Judged, ServiceFamily, iso, reports_family
from . import cells
from .heartbeats import HeartbeatCache
from .heartbeats import configure as configure_cache
from .verdict import PROJECT, ServiceRow, effective_down_time, judge, judge_cached, updated_time

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from ...reader import ReadContext
    from ...snapshot import Reading

NOVA_DEFAULT_OPTS: list[cfg.Opt] = [
    cfg.IntOpt(
        "service_down_time", default=60, help="Maximum seconds since a service's last heartbeat for Nova to call it up."
    ),
    cfg.IntOpt(
        "report_interval",
        default=10,
        help="Seconds between heartbeats; a down time not above it is replaced by 2.5 x it.",
    ),
    cfg.StrOpt(
        "servicegroup_driver",
        default="db",
        choices=["db", "mc"],
        help="Where Nova's heartbeats go: 'db' (the cell databases) or 'mc' (memcached, read through "
        "oslo.cache as nova.conf's [cache] configures it; needs the extra 'memcached').",
    ),
    cfg.StrOpt(
        "default_availability_zone",
        default="nova",
        help="Zone of a compute host that is in no aggregate with availability_zone metadata.",
    ),
    cfg.StrOpt(
        "internal_service_availability_zone", default="internal", help="Zone of every service that is not a compute."
    ),
]
NOVA_DATABASE_OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "connection", secret=True, help="SQLAlchemy URL of the cell database (also the base of templated cell URLs)."
    ),
]
NOVA_API_DATABASE_OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "connection", secret=True, help="SQLAlchemy URL of the API database, where cells and availability zones live."
    ),
]


@dataclass(frozen=True)
class NovaConfig:
    """Nova as configured: nova-api's threshold and zones, and where its databases are."""

    service_down_time: int = 60
    report_interval: int = 10
    default_availability_zone: str = "nova"
    internal_service_availability_zone: str = "internal"
    database_connection: str | None = None
    api_database_connection: str | None = None
    # servicegroup_driver = mc: where the heartbeats are (None: in the cell databases)
    heartbeats: HeartbeatCache | None = field(default=None, compare=False, repr=False)

    @property
    def source(self) -> NovaSource:
        return SOURCE

    @property
    def down_time(self) -> int:
        if self.heartbeats is not None:  # the expiry the cache region was given (0 leaves [cache]'s own)
            return self.heartbeats.expiration_time
        return effective_down_time(self.service_down_time, self.report_interval)

    notes: tuple[str, ...] = ()

    def urls(self) -> list[str]:
        return [u for u in (self.api_database_connection, self.database_connection) if u]

    def read(self, ctx: ReadContext, deadline: float, budget: float) -> Reading:
        return cells.read(self, ctx, deadline, budget)

    def judge(self, reading: Reading, now: int) -> list[Judged]:
        context: cells.NovaContext = reading.context or cells.NovaContext()
        if self.heartbeats is not None:
            return judge_cached(
                reading.rows,
                now,
                context.heartbeats or {},
                context.host_zones,
                self.default_availability_zone,
                self.internal_service_availability_zone,
            )
        return judge(
            reading.rows,
            now,
            self.down_time,
            context.rules,
            context.host_zones,
            self.default_availability_zone,
            self.internal_service_availability_zone,
        )

    def health_families(self, reading: Reading, prefix: str) -> Iterator[Metric]:
        known = reading.context is not None and reading.context.zones_known
        yield GaugeMetricFamily(
            prefix + "service_exporter_zones_known",
            "1 when compute zones were read from Nova's API database's aggregates in this "
            "scrape; 0 when they are the last zones known or default_availability_zone.",
            value=1.0 if known else 0.0,
        )

    def record(self, j: Judged) -> dict[str, object]:
        row: ServiceRow = j.row
        return {
            "forced_down": bool(row.forced_down),
            "updated_at": iso(self.updated_at(j)),
            "last_seen_up": iso(row.last_seen_up),
        }

    def updated_at(self, j: Judged) -> int | None:
        """The updated_at GET /os-services shows (servicegroup.API.get_updated_time)."""
        row: ServiceRow = j.row
        if self.heartbeats is not None:
            return updated_time(row, j.heartbeat)
        return row.updated_at


def configure(conf: cfg.ConfigOpts) -> NovaConfig | None:
    """Nova is read when nova.conf (or the command line) names one of its databases."""
    database = conf.database.connection or None
    api_database = conf.api_database.connection or None
    if not database and not api_database:
        return None
    cache: HeartbeatCache | None = None
    notes: tuple[str, ...] = ()
    if conf.servicegroup_driver == "mc":
        cache = configure_cache(conf, effective_down_time(conf.service_down_time, conf.report_interval))
        if cache.backend == "dogpile.cache.null":
            notes = (
                "[cache] backend = dogpile.cache.null keeps no heartbeat: every service is down, as Nova itself says",
            )
    return NovaConfig(
        service_down_time=conf.service_down_time,
        report_interval=conf.report_interval,
        default_availability_zone=conf.default_availability_zone,
        internal_service_availability_zone=conf.internal_service_availability_zone,
        database_connection=database,
        api_database_connection=api_database,
        heartbeats=cache,
        notes=notes,
    )


def _field(name: str) -> itemgetter[int]:
    return itemgetter(ServiceRow._fields.index(name))


class NovaSource:
    project = PROJECT
    hint = "[database] connection or [api_database] connection in nova.conf (--config-file)"
    families = (
        ServiceFamily(
            "service_forced_down",
            "1 when an operator forced the service down (Nova's services.forced_down): down whatever its heartbeat.",
            FLAG,
            _field("forced_down"),
        ),
        reports_family(_field("report_count")),
    )
    info_labels = (
        InfoLabel("topic", _field("topic")),
        InfoLabel("uuid", _field("uuid")),
        InfoLabel("version", _field("version")),
        InfoLabel("disabled_reason", _field("disabled_reason")),
    )

    def option_groups(self) -> dict[str | None, list[cfg.Opt]]:
        return {None: NOVA_DEFAULT_OPTS, "database": NOVA_DATABASE_OPTS, "api_database": NOVA_API_DATABASE_OPTS}

    def configure(self, conf: cfg.ConfigOpts) -> NovaConfig | None:
        return configure(conf)


SOURCE = NovaSource()
