"""The per-service families, declared once: the common ones, and those the configured sources add.

Both writers derive from this declaration: collector.py (prometheus_client's families, the reference)
and exposition.py (the fast text writer). A new family or label is a line here or in a source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

from .sources.base import COUNT, FLAG, SECONDS, Configured, Judged, Source

SERVICE_LABELS = ("project", "cell", "binary", "host", "zone")


def _judged(name: str) -> itemgetter[int]:
    return itemgetter(Judged._fields.index(name))


@dataclass(frozen=True)
class Family:
    """A per-service family and, per project that has it, how to get its values: from the Judged
    rows (the common families) or from the project's own rows."""

    name: str
    help: str
    kind: str
    getters: tuple[tuple[str, bool, Callable[[Any], Any]], ...]  # (project, from own rows?, getter)

    @property
    def type(self) -> str:
        return "counter" if self.kind == COUNT else "gauge"

    def getter(self, project: str) -> tuple[bool, Callable[[Any], Any]] | None:
        for name, own, get in self.getters:
            if name == project:
                return own, get
        return None

    def values(self, project: str, judged: list[Judged], rows: list[Any]) -> list[Any] | None:
        """This family's value for each service of `project` (None: the project has no such family)."""
        found = self.getter(project)
        if found is None:
            return None
        own, get = found
        return list(map(get, rows if own else judged))


COMMON = (
    (
        "service_up",
        "1 when the service's own project would call it up now (its rule and threshold: "
        "service_down_time_seconds); else 0.",
        FLAG,
        _judged("up"),
    ),
    (
        "service_heartbeat_age_seconds",
        "Seconds from the heartbeat the project judges by to now, on this exporter's UTC clock; "
        "negative when the heartbeat is in the future (clock skew between hosts).",
        SECONDS,
        _judged("age_us"),
    ),
    (
        "service_last_seen_timestamp_seconds",
        "Unix time of the heartbeat the project judges by.",
        SECONDS,
        _judged("heartbeat"),
    ),
    (
        "service_disabled",
        "1 when the service is administratively disabled (no new work; it may still be up).",
        FLAG,
        _judged("disabled"),
    ),
)

INFO_NAME = "service"
INFO_HELP = "Descriptive fields of the service, in labels that differ by project."


@lru_cache(maxsize=16)
def declared(sources: tuple[Source, ...]) -> tuple[Family, ...]:
    """The common families, then each family a source adds, in the sources' order; two sources
    adding the same family must declare it alike."""
    projects = tuple(s.project for s in sources)
    families = [
        Family(name, help_, kind, tuple((p, False, get) for p in projects)) for name, help_, kind, get in COMMON
    ]
    for source in sources:
        for added in source.families:
            mine = (source.project, True, added.value)
            for i, family in enumerate(families):
                if family.name == added.name:
                    if (family.help, family.kind) != (added.help, added.kind):
                        raise ValueError(f"{source.project} declares {added.name} unlike another source")
                    families[i] = Family(family.name, family.help, family.kind, family.getters + (mine,))
                    break
            else:
                families.append(Family(added.name, added.help, added.kind, (mine,)))
    return tuple(families)


def of_groups(groups: Sequence[tuple[Configured, list[Judged]]]) -> tuple[Family, ...]:
    """The per-service families of the sources in `groups` ((configured source, judged rows) pairs)."""
    return declared(tuple(configured.source for configured, _ in groups))


__all__ = ["COUNT", "FLAG", "SECONDS", "SERVICE_LABELS", "Family", "declared", "of_groups", "INFO_NAME", "INFO_HELP"]
