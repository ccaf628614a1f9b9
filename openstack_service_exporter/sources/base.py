"""What every source gives the core: the Judged row every output reads, the families a project adds,
and the Source interface itself (the registry in sources/__init__.py holds one per project).

A Source is a plug-in, in the manner of mysqld_exporter's Scraper: it declares its options, reads its
databases through the core's reading context, judges its rows by its own project's rule, and names
the extra families and labels it has. The core iterates over sources and never names one.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from oslo_config import cfg
    from prometheus_client.metrics_core import Metric

    from ..reader import ReadContext
    from ..snapshot import Reading

MICROS = 1_000_000


def iso(us: int | None) -> str | None:
    """Naive-UTC microseconds as ISO 8601 with a Z, the way a script wants it."""
    if us is None:
        return None
    moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=us)
    return moment.isoformat() + "Z"


class Judged(NamedTuple):
    """One service as its project judges it, ready for every output.

    The label fields come first; `row` is the project's own row (a NamedTuple), for the families and
    fields only that project has. Times are integer microseconds since 1970 in naive UTC.
    """

    project: str
    cell: str
    binary: str | None
    host: str | None
    zone: str
    up: bool
    heartbeat: int | None  # the instant the project judges by; None when the row has none
    age_us: int | None  # now - heartbeat, signed: negative means a heartbeat from the future
    disabled: Any  # truth value: administratively disabled (NULL reads as false)
    row: Any


# How a per-service family's values become text: a 0/1 gauge by truth value, integer microseconds
# as seconds (None: no sample), or a non-negative count (a counter).
FLAG, SECONDS, COUNT = "flag", "seconds", "count"


@dataclass(frozen=True)
class ServiceFamily:
    """A per-service family a project adds: its name (without prefix; a counter's without _total),
    HELP, how its values are written, and the value of one of the project's rows."""

    name: str
    help: str
    kind: str
    value: Callable[[Any], Any]  # row -> value; an operator.itemgetter where it can (map runs it in C)

    @property
    def type(self) -> str:
        return "counter" if self.kind == COUNT else "gauge"


def reports_family(value: Callable[[Any], Any]) -> ServiceFamily:
    """service_reports_total, for the projects whose table counts heartbeats (report_count)."""
    return ServiceFamily(
        "service_reports",
        "Heartbeats the service has written since it was created (services.report_count).",
        COUNT,
        value,
    )


@dataclass(frozen=True)
class InfoLabel:
    """An extra label of service_info: its name and its value in one of the project's rows (text, an
    int, or None for an empty value)."""

    name: str
    value: Callable[[Any], Any]


class Source(Protocol):
    """One OpenStack project's service registry."""

    @property
    def project(self) -> str:
        """The `project` label value."""

    @property
    def families(self) -> tuple[ServiceFamily, ...]:
        """Per-service families beyond the common ones."""

    @property
    def info_labels(self) -> tuple[InfoLabel, ...]:
        """Extra labels of service_info."""

    @property
    def hint(self) -> str:
        """Where an operator turns the project on, for error messages."""

    def option_groups(self) -> dict[str | None, list[cfg.Opt]]:
        """Options registered on the exporter's own command line and files (group None: DEFAULT)."""

    def configure(self, conf: cfg.ConfigOpts) -> Configured | None:
        """The project's settings read from `conf` (and the project's own files), or None when the
        project is not configured; a ConfigError for a configuration it cannot run with."""


class Configured(Protocol):
    """A configured source: its settings, and the work of one reading. No I/O at construction."""

    @property
    def source(self) -> Source: ...

    @property
    def down_time(self) -> int:
        """The threshold its rule uses, seconds (service_down_time_seconds{project})."""

    @property
    def notes(self) -> tuple[str, ...]:
        """What an operator must know of this answer (e.g. a part it lacks), for pages and list."""

    def urls(self) -> list[str]:
        """The database URLs known from configuration (opened at start, so a bad one is an error then)."""

    def read(self, ctx: ReadContext, deadline: float, budget: float) -> Reading:
        """Everything this project's databases say now, by `deadline` (monotonic; `budget` seconds
        from the reading's start); never raises (failures are health)."""

    def judge(self, reading: Reading, now: int) -> list[Judged]:
        """The project's own verdict on each row of `reading`, as of `now`."""

    def health_families(self, reading: Reading, prefix: str) -> Iterable[Metric]:
        """Project-specific health families (prometheus_client families), if any."""

    def record(self, judged: Judged) -> dict[str, object]:
        """The project's own fields of `list --format json` (times as ISO 8601 text)."""

    def updated_at(self, judged: Judged) -> int | None:
        """The time `list`'s table shows as Updated_At, like the project's own CLI."""
