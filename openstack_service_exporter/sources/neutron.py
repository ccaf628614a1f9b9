"""Neutron: every agent of the `agents` table, judged as neutron-server judges them
(GET /v2.0/agents, i.e. `openstack network agent list`).

Table read (SELECT on it is all a read-only user needs): agents of neutron.conf's [database].

    SELECT id, agent_type, binary, topic, host, ..., heartbeat_timestamp FROM agents ORDER BY created_at, id

Every row is listed: Neutron has no soft delete (DELETE /v2.0/agents/{id} removes the row).

Neutron's rule (neutron/db/agents_db.py, AgentDbMixin._make_agent_dict; neutron/agent/common/utils.py,
is_agent_down; oslo_utils.timeutils.is_older_than):
    alive  <=>  now - heartbeat_timestamp <= [DEFAULT] agent_down_time   (inclusive, no abs(); default 75)
so a heartbeat from the future is alive however far ahead. admin_state_up does not change `alive`:
it is the status (service_disabled = not admin_state_up).

With ML2/OVN ([ml2] mechanism_drivers naming `ovn`) neutron-server adds agents built from OVN's
southbound database (neutron/plugins/ml2/drivers/ovn/agent/neutron_agent.py); they are no rows of
`agents`, so this answer is then partial, and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, NamedTuple, TypeVar, cast

import sqlalchemy as sa
from oslo_config import cfg

from ..config import own_files_opts, read_own_files
from ..reader import OneTableQuery, ReadContext, read_one
from ..snapshot import Reading
from ..sql import Query, epoch_us
from . import ovn
from .base import MICROS, SECONDS, InfoLabel, Judged, ServiceFamily, iso

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

PROJECT = "neutron"
LOG = logging.getLogger(__name__)

# Neutron's own options that the rule needs, with its names, bounds and defaults
# (neutron/conf/agent/database/agents_db.py, neutron/conf/plugins/ml2/config.py, oslo.db).
NEUTRON_OPTS: dict[str | None, list[cfg.Opt]] = {
    None: [
        cfg.IntOpt(
            "agent_down_time",
            default=75,
            min=1,
            max=(2**31 - 1) // 1000,
            help="Seconds after an agent's last heartbeat for neutron-server to call it down.",
        )
    ],
    "database": [cfg.StrOpt("connection", secret=True, help="SQLAlchemy URL of Neutron's database.")],
    "ml2": [cfg.ListOpt("mechanism_drivers", default=[], help="The ML2 plugin's mechanism drivers.")],
    # OVN's groups are named: str keys, read here as this table's str | None (it is only read)
    **cast("dict[str | None, list[cfg.Opt]]", ovn.OVN_OPTS),
}
OVN_DRIVER = "ovn"  # its entry point in neutron.ml2.mechanism_drivers
OVN_NOTE = (
    "the agents of ML2/OVN (ovn-controller, the OVN metadata agent, neutron-ovn-agent) live in OVN's "
    "databases, which this installation cannot read: this answer lacks them"
)


class NeutronRow(NamedTuple):
    """One row of Neutron's `agents` (times in integer µs; a zero date reads as None)."""

    id: str
    agent_type: str
    binary: str
    topic: str
    host: str
    availability_zone: str | None
    admin_state_up: int | bool
    created_at: int | None
    started_at: int | None
    heartbeat_timestamp: int | None


_PLAIN = NeutronRow._fields[:-3]
_TIMESTAMPS = NeutronRow._fields[-3:]
# availability_zone came in Mitaka; every other column is in the Kilo baseline.
_OPTIONAL = ("availability_zone",)
agents = sa.table("agents", *(sa.column(c) for c in NeutronRow._fields))


def agents_query(columns: frozenset[str]) -> Query:
    """Every row, by created_at then id (agents.id is a uuid: its order alone means nothing)."""
    missing = [c for c in NeutronRow._fields if c not in columns and c not in _OPTIONAL]
    if missing:
        raise sa.exc.NoSuchColumnError("table agents lacks " + ", ".join(missing) + ": not a Neutron database")
    plain = (agents.c[c] if c in columns else sa.null().label(c) for c in _PLAIN)
    stamps = (epoch_us(agents.c[c]).label(c) for c in _TIMESTAMPS)
    return sa.select(*plain, *stamps).order_by(agents.c.created_at, agents.c.id)


AGENTS = OneTableQuery("agents", agents_query, NeutronRow._make)
_KEY: attrgetter[tuple[str, str]] = attrgetter("binary", "host")
_Row = TypeVar("_Row", NeutronRow, ovn.OvnAgentRow)  # an OVN agent is listed as an agents row is


def _beat(row: NeutronRow | ovn.OvnAgentRow) -> int:
    return -1 if row.heartbeat_timestamp is None else row.heartbeat_timestamp


def one_per_key(rows: list[_Row]) -> tuple[list[_Row], int]:
    """One row per (binary, host) and how many were left out. Neutron's unique key is (agent_type,
    host), so two agent types of one binary may share a host: the newest heartbeat is shown, a tie
    going to the row listed last (created later, or the higher id)."""
    if len(set(map(_KEY, rows))) == len(rows):
        return rows, 0
    newest = {_KEY(row): row for row in sorted(rows, key=_beat)}  # sorted() is stable: a tie keeps the order
    return [row for row in rows if newest[_KEY(row)] is row], len(rows) - len(newest)


@dataclass(frozen=True)
class NeutronConfig:
    """Neutron as configured: neutron-server's threshold, database and mechanism drivers."""

    database_connection: str
    agent_down_time: int = 75
    mechanism_drivers: tuple[str, ...] = ()
    ovn_databases: ovn.OvnConfig | None = None  # read when ML2/OVN is on and the [ovn] extra is installed

    @property
    def source(self) -> NeutronSource:
        return SOURCE

    @property
    def down_time(self) -> int:
        return self.agent_down_time

    @property
    def ovn(self) -> bool:
        return OVN_DRIVER in self.mechanism_drivers

    @property
    def notes(self) -> tuple[str, ...]:
        if self.ovn and self.ovn_databases is None:
            return (OVN_NOTE + f" ({ovn.missing_library()})",)
        return ()

    def urls(self) -> list[str]:
        return [self.database_connection]

    def read(self, ctx: ReadContext, deadline: float, budget: float) -> Reading:
        # OVN's databases are read while the agents table is.
        pending = self.ovn_databases.submit(ctx, deadline) if self.ovn_databases else None
        health, result = read_one(ctx, PROJECT, self.database_connection, AGENTS, deadline, budget)
        rows: list[NeutronRow] = []
        if result is not None:
            rows, duplicates = one_per_key(result.rows)
            health = replace(health, duplicates=duplicates)
        if pending is None:
            return Reading(self, rows, [health], partial={"ovn": self.ovn})
        found = pending.collect(deadline, budget)
        # Two chassis may carry one hostname: one agent per (binary, host) there too.
        agents, duplicates = one_per_key(found.rows)
        databases = found.databases
        if duplicates:
            databases = databases[:-1] + [replace(databases[-1], duplicates=duplicates)]
        return Reading(
            self, rows, [health, *databases], context=replace(found, rows=agents), partial={"ovn": not found.complete}
        )

    def judge(self, reading: Reading, now: int) -> list[Judged]:
        limit = self.agent_down_time * MICROS
        out: list[Judged] = []
        for row in reading.rows:
            beat = row.heartbeat_timestamp
            age = None if beat is None else now - beat
            # NOTE: a zero-date heartbeat makes neutron-server fail (None arithmetic); it is down here.
            up = age is not None and age <= limit
            out.append(
                Judged(
                    PROJECT,
                    "",
                    row.binary,
                    row.host,
                    row.availability_zone or "",
                    up,
                    beat,
                    age,
                    not row.admin_state_up,
                    row,
                )
            )
        if reading.context is not None:
            out += ovn.judge(reading.context.rows, now, self.agent_down_time)
        return out

    def health_families(self, reading: Reading, prefix: str) -> Iterable[Metric]:
        return () if reading.context is None else ovn.health_families(reading.context, prefix)

    def record(self, j: Judged) -> dict[str, object]:
        row: NeutronRow | ovn.OvnAgentRow = j.row
        record: dict[str, object] = {
            "id": row.id,
            "agent_type": row.agent_type,
            "topic": row.topic,
            "admin_state_up": bool(row.admin_state_up),
            "heartbeat_timestamp": iso(row.heartbeat_timestamp),
            "started_at": iso(row.started_at),
            "created_at": iso(row.created_at),
        }
        if isinstance(row, ovn.OvnAgentRow):
            record.update(ovn.record(row))
        return record

    def updated_at(self, j: Judged) -> int | None:
        row: NeutronRow | ovn.OvnAgentRow = j.row
        return row.heartbeat_timestamp


def configure(conf: cfg.ConfigOpts) -> NeutronConfig | None:
    own = read_own_files(conf, PROJECT, NEUTRON_OPTS)
    if own is None:
        return None
    drivers = tuple(own.ml2.mechanism_drivers)
    databases = ovn.ovn_config(own) if OVN_DRIVER in drivers and ovn.missing_library() is None else None
    configured = NeutronConfig(
        database_connection=own.database.connection,
        agent_down_time=own.agent_down_time,
        mechanism_drivers=drivers,
        ovn_databases=databases,
    )
    for note in configured.notes:
        LOG.warning("neutron: %s", note)
    return configured


def _field(name: str) -> itemgetter[int]:
    return itemgetter(NeutronRow._fields.index(name))


class NeutronSource:
    project = PROJECT
    hint = "[neutron] config_file (neutron.conf and plugins/ml2/ml2_conf.ini of a neutron-api host)"
    families = (
        ServiceFamily(
            "service_started_timestamp_seconds",
            "Unix time of the agent's last start (Neutron's agents.started_at): restarts and "
            "flapping agents show as its changes.",
            SECONDS,
            _field("started_at"),
        ),
    )
    info_labels = (
        InfoLabel("agent_type", _field("agent_type")),
        InfoLabel("topic", _field("topic")),
        InfoLabel("id", _field("id")),
    )

    def option_groups(self) -> dict[str | None, list[cfg.Opt]]:
        # neutron-api reads neutron.conf, then plugins/ml2/ml2_conf.ini: both are named, in that order.
        return {"neutron": own_files_opts(PROJECT, "neutron-api")}

    def configure(self, conf: cfg.ConfigOpts) -> NeutronConfig | None:
        return configure(conf)


SOURCE = NeutronSource()
