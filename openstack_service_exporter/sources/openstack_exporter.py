"""openstack-exporter's agent-state families, for `[exporter] compatibility = openstack-exporter`: the
names, label names and label values that exporter gives each service, made from the same judged rows
as the native families, so that alerts and dashboards written for it keep working.

openstack-exporter (github.com/openstack-exporter/openstack-exporter) names a family
prometheus.BuildFQName(<--prefix>_<service>, "", "agent_state") with HELP "agent_state"
(exporters/exporter.go, GetName and AddMetric), value 1 when the API says the service is up, else 0:

    nova     exporters/nova.go, ListNovaAgentState: id, hostname, service, adminState, zone, disabledReason
    cinder   exporters/cinder.go, ListCinderAgentState: uuid, hostname, service, adminState, zone, disabledReason
    neutron  exporters/neutron.go, ListAgentStates: id, hostname, service, adminState, availability_zone

Where it is wrong, this is right: Cinder's uuid is the row's own (there a random UUID at every scrape,
its issue #190, as os-services has none), and a label set is never written twice (duplicate series
there fail the whole scrape: #84, #98, #115).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from prometheus_client.core import GaugeMetricFamily

from .base import Configured, Judged

MODE = "openstack-exporter"
HELP = "agent_state"  # openstack-exporter's HELP is the family's short name (exporter.go, AddMetric)


def _text(value: Any) -> str:
    """A field as Go's JSON decoding leaves it: null is the empty string."""
    return "" if value is None else str(value)


def _admin(j: Judged) -> str:
    # os-services' status (nova/api/openstack/compute/services.py, _get_service_detail;
    # cinder/api/v3/services.py, ServiceController.index): "disabled" if services.disabled
    return "disabled" if j.disabled else "enabled"


def _status(j: Judged) -> tuple[str, ...]:
    """Nova's and Cinder's labels: the same fields of os-services. Nova's id is Service.ID, which is
    services.uuid from microversion 2.53 on: openstack-exporter asks for 2.87 or the newest the cloud
    has (nova.go, novaLatestSupportedMicroversion). Cinder's uuid is the row's own here."""
    row = j.row
    return (_text(row.uuid), _text(j.host), _text(j.binary), _admin(j), j.zone, _text(row.disabled_reason))


def _neutron(j: Judged) -> tuple[str, ...]:
    # adminState: "up" if agent.AdminStateUp else "down"; id: agent.ID (never empty here: the primary key)
    return (_text(j.row.id), _text(j.host), _text(j.binary), "down" if j.disabled else "up", j.zone)


class AgentState(NamedTuple):
    """One project's family: openstack-exporter's service name in it, its label names (in the order
    its Metric declares them), and their values for a judged service."""

    service: str
    labels: tuple[str, ...]
    values: Callable[[Judged], tuple[str, ...]]


_STATUS_LABELS = ("hostname", "service", "adminState", "zone", "disabledReason")
AGENT_STATES = {
    "nova": AgentState("nova", ("id",) + _STATUS_LABELS, _status),
    "cinder": AgentState("cinder", ("uuid",) + _STATUS_LABELS, _status),
    "neutron": AgentState("neutron", ("id", "hostname", "service", "adminState", "availability_zone"), _neutron),
}


def name(prefix: str, service: str) -> str:
    """prometheus.BuildFQName(prefix + "_" + service, "", "agent_state"): the namespace is never empty,
    so an empty --prefix gives _nova_agent_state there too."""
    return f"{prefix}_{service}_agent_state"


def families(groups: Sequence[tuple[Configured, list[Judged]]], prefix: str) -> Iterator[GaugeMetricFamily]:
    """One family per configured project that openstack-exporter has one for, in the registry's order."""
    for configured, judged in groups:
        state = AGENT_STATES.get(configured.source.project)
        if state is not None:
            yield family(state, judged, prefix)


def family(state: AgentState, judged: Iterable[Judged], prefix: str) -> GaugeMetricFamily:
    out = GaugeMetricFamily(name(prefix, state.service), HELP, labels=state.labels)
    seen = set()
    for j in judged:
        labels = state.values(j)
        # NOTE: judged rows are unique per (project, cell, binary, host), and these labels have no
        # cell: two cells' services can share host and binary, and only id/uuid tells them apart.
        # A NULL uuid (an old row not yet given one) could still collide: the first row (cells in
        # order, then by id) is shown, never a duplicate series.
        if labels not in seen:
            seen.add(labels)
            out.add_metric(labels, 1.0 if j.up else 0.0)
    return out
