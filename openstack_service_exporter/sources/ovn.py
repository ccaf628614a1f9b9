"""Neutron's ML2/OVN agents: ovn-controller (plain or gateway), the OVN metadata agent and
neutron-ovn-agent, which neutron-server builds from OVN's databases instead of its `agents` table.
This module is called by the Neutron source when [ml2] mechanism_drivers names `ovn`.

Read from the databases neutron-server itself reads ([ovn] ovn_nb_connection and ovn_sb_connection
of ml2_conf.ini), through a maintained monitor per database (openstack_service_exporter/sources/ovsdb.py;
why a monitor rather than a one-shot read per scrape: its docstring and bench/RESULTS.md, "ML2/OVN:
5,000 chassis beside 5,000 SQL agents"); each scrape waits until its monitor has every change
committed before the scrape began, or says the database is down:
    northbound  NB_Global: nb_cfg (neutron-server's pings) and external_ids (when it last pinged)
    southbound  Chassis_Private: name, chassis, nb_cfg, nb_cfg_timestamp, external_ids
                Chassis: hostname, other_config
What the rule needs of each row is made once per change of the row (chassis_of, private_of), and the
agents once per change of the tables.

Neutron's rule (neutron 29.0.0, neutron/plugins/ml2/drivers/ovn/agent/neutron_agent.py):
  - agents (AgentCache.populate): each Chassis_Private that points to a Chassis gives an
    ovn-controller agent (id: the Chassis_Private's name), typed "OVN Controller Gateway agent" when
    `enable-chassis-as-gw` is one of the Chassis' ovn-cms-options (ControllerAgent.__new__ and
    neutron/common/ovn/utils.py, is_gateway_chassis); plus a neutron-ovn-agent when its external_ids
    carry a non-empty `neutron:ovn-neutron-agent-id`, else a metadata agent when they carry a
    non-empty `neutron:ovn-metadata-id` (never both);
  - NeutronAgent.alive:  NB_Global.nb_cfg - agent's nb_cfg <= 1
                         or  now - nb_cfg_timestamp / 1000 < [DEFAULT] agent_down_time  (strict);
    the controller's nb_cfg is Chassis_Private.nb_cfg, the others' the integer in their
    `neutron:ovn-metadata-sb-cfg` / `neutron:ovn-neutron-agent-sb-cfg` (missing: 0); all of one
    chassis share its nb_cfg_timestamp (milliseconds);
  - MetadataAgent.alive and OVNNeutronAgent.alive: also down whenever their chassis' controller is;
  - availability zones: the first `availability-zones=` item of ovn-cms-options, split on ':'.

An orphaned Chassis_Private (its Chassis deleted, e.g. after an unclean stop) gives no agent here,
as in a freshly started neutron-server, whose AgentCache.populate skips it; a neutron-server that
saw the Chassis go keeps listing its agents as down under a "deleted" host until it restarts. The
exporter counts such rows instead (service_exporter_ovn_orphaned_chassis).

Asking the API differs in one way that matters: GET /v2.0/agents first pings (mech_driver.py,
get_agents -> ping_all_chassis: NB_Global.nb_cfg + 1, at most once per agent_down_time // 2) and live
ovn-controllers echo the new value. This exporter never writes to OVN, so it judges on what the last
ping left: while nobody lists agents, nb_cfg stays put and a dead controller still passes the nb_cfg
test. neutron 29.0.0 pings nowhere else (no periodic task does; only a live migration bumps nb_cfg),
so something must list the agents regularly (an API client, a cron job).
service_ovn_liveness_check_timestamp_seconds shows when the last ping was, and each agent's
service_heartbeat_age_seconds is its nb_cfg_timestamp's age: both grow without bound when pings stop.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, NamedTuple

from oslo_config import cfg, types
from prometheus_client.core import GaugeMetricFamily

from ..config import ConfigError
from ..reader import ReadContext
from ..snapshot import DatabaseHealth, describe
from . import ovsdb
from .base import MICROS, Judged
from .ovsdb import Remote, Select, Tables, as_map, atom_set, uuid_of

PROJECT = "neutron"
NB_CELL, SB_CELL = "(ovn_nb)", "(ovn_sb)"
NB_DATABASE, SB_DATABASE = "OVN_Northbound", "OVN_Southbound"

# [ovn] of ml2_conf.ini with Neutron's names, defaults and checks
# (neutron/conf/plugins/ml2/drivers/ovn/ovn_conf.py, ovn_opts).
_CONNECTION = types.String(regex=r"^(tcp|ssl|unix):.+")
OVN_OPTS = {
    "ovn": [
        cfg.ListOpt(
            "ovn_nb_connection",
            default=["tcp:127.0.0.1:6641"],
            item_type=_CONNECTION,
            help="The OVN_Northbound OVSDB: tcp:IP:PORT, ssl:IP:PORT or unix:FILE (several: comma separated).",
        ),
        cfg.StrOpt("ovn_nb_private_key", default="", help="PEM private key for ssl: to the northbound database."),
        cfg.StrOpt("ovn_nb_certificate", default="", help="PEM certificate of ovn_nb_private_key."),
        cfg.StrOpt("ovn_nb_ca_cert", default="", help="PEM CA certificate the northbound server's is checked with."),
        cfg.ListOpt(
            "ovn_sb_connection",
            default=["tcp:127.0.0.1:6642"],
            item_type=_CONNECTION,
            help="The OVN_Southbound OVSDB: tcp:IP:PORT, ssl:IP:PORT or unix:FILE (several: comma separated).",
        ),
        cfg.StrOpt("ovn_sb_private_key", default="", help="PEM private key for ssl: to the southbound database."),
        cfg.StrOpt("ovn_sb_certificate", default="", help="PEM certificate of ovn_sb_private_key."),
        cfg.StrOpt("ovn_sb_ca_cert", default="", help="PEM CA certificate the southbound server's is checked with."),
    ]
}

# neutron/common/ovn/constants.py
CONTROLLER, GATEWAY = "OVN Controller agent", "OVN Controller Gateway agent"
METADATA, NEUTRON_AGENT = "OVN Metadata agent", "OVN Neutron agent"
BINARIES = {
    CONTROLLER: "ovn-controller",
    GATEWAY: "ovn-controller",
    METADATA: "neutron-ovn-metadata-agent",
    NEUTRON_AGENT: "neutron-ovn-agent",
}
METADATA_ID, METADATA_CFG = "neutron:ovn-metadata-id", "neutron:ovn-metadata-sb-cfg"
NEUTRON_AGENT_ID, NEUTRON_AGENT_CFG = "neutron:ovn-neutron-agent-id", "neutron:ovn-neutron-agent-sb-cfg"
LIVENESS_CHECK = "neutron:liveness_check_at"
CMS_OPTIONS, AS_GATEWAY, ZONES = "ovn-cms-options", "enable-chassis-as-gw", "availability-zones"


class OvnAgentRow(NamedTuple):
    """One OVN agent as GET /v2.0/agents lists it. The first fields are the Neutron source's row's,
    in its order, so that its families and service_info labels read both; then OVN's own."""

    id: str
    agent_type: str
    binary: str
    topic: str  # "n/a", as Neutron says
    host: str  # the Chassis' hostname
    availability_zone: str  # the chassis' zones, sorted, joined with ","
    admin_state_up: bool  # always True: OVN agents cannot be disabled
    created_at: None  # not known to OVN
    started_at: None
    heartbeat_timestamp: int  # Chassis_Private.nb_cfg_timestamp, µs
    chassis: str  # the Chassis_Private's name
    nb_cfg: int | None  # the agent's own nb_cfg (None: not an integer, Neutron fails on it)
    nb_global_nb_cfg: int  # NB_Global.nb_cfg when read


def cms_options(other_config: dict[str, Any]) -> list[str]:
    """neutron/common/ovn/utils.py, get_ovn_cms_options."""
    return [opt.strip() for opt in other_config.get(CMS_OPTIONS, "").split(",")]


def zones(options: list[str]) -> set[str]:
    """neutron/common/ovn/utils.py, get_chassis_availability_zones."""
    for opt in options:
        if opt.startswith(ZONES + "="):
            return {az.strip() for az in opt.split("=")[1].split(":") if az.strip()}
    return set()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Chassis(NamedTuple):
    """What the rule needs of one Chassis row (made once per change of the row)."""

    hostname: str
    controller: str  # CONTROLLER or GATEWAY
    zone: str  # the chassis' zones, sorted, joined with ","


def chassis_of(row: dict[str, Any]) -> Chassis:
    options = cms_options(as_map(row["other_config"]))
    return Chassis(row["hostname"], GATEWAY if AS_GATEWAY in options else CONTROLLER, ",".join(sorted(zones(options))))


class Private(NamedTuple):
    """What the rule needs of one Chassis_Private row (made once per change of the row)."""

    name: str
    chassis: str | None  # the uuid of its Chassis
    nb_cfg: int
    beat: int  # nb_cfg_timestamp, µs
    agent: tuple[str, str, int | None] | None  # a metadata or neutron-ovn agent: id, type, nb_cfg


def private_of(row: dict[str, Any]) -> Private:
    refs = atom_set(row["chassis"])
    ids = as_map(row["external_ids"])
    agent = None
    for kind, id_key, cfg_key in (
        (NEUTRON_AGENT, NEUTRON_AGENT_ID, NEUTRON_AGENT_CFG),
        (METADATA, METADATA_ID, METADATA_CFG),
    ):
        if ids.get(id_key):
            agent = (ids[id_key], kind, _int(ids.get(cfg_key, 0)))
            break
    return Private(
        row["name"], uuid_of(refs[0]) if refs else None, row["nb_cfg"], row["nb_cfg_timestamp"] * 1000, agent
    )


def nb_global_of(row: dict[str, Any]) -> tuple[int, float | None]:
    """NB_Global's nb_cfg and neutron-server's last ping."""
    return row["nb_cfg"], _liveness(as_map(row["external_ids"]))


NB_SELECTS = (Select("NB_Global", ("nb_cfg", "external_ids"), nb_global_of),)
SB_SELECTS = (
    Select("Chassis_Private", ("name", "chassis", "nb_cfg", "nb_cfg_timestamp", "external_ids"), private_of),
    Select("Chassis", ("hostname", "other_config"), chassis_of),
)


_NAME = attrgetter("name")


def agents_of(nb_cfg: int, privates: Iterable[Private], chassis: dict[str, Chassis]) -> tuple[list[OvnAgentRow], int]:
    """The agents neutron-server lists (AgentCache.populate), each controller followed by the
    agent of its chassis if any; and how many Chassis_Private rows are orphaned."""
    agents: list[OvnAgentRow] = []
    orphaned = 0
    for private in sorted(privates, key=_NAME):
        found = chassis.get(private.chassis) if private.chassis else None
        if found is None:
            orphaned += 1
            continue
        hostname, controller, zone = found
        own: list[tuple[str, str, int | None]] = [(private.name, controller, private.nb_cfg)]
        if private.agent:
            own.append(private.agent)
        for agent_id, kind, agent_cfg in own:
            agents.append(
                OvnAgentRow(
                    agent_id,
                    kind,
                    BINARIES[kind],
                    "n/a",
                    hostname,
                    zone,
                    True,
                    None,
                    None,
                    private.beat,
                    private.name,
                    agent_cfg,
                    nb_cfg,
                )
            )
    return agents, orphaned


def judge(rows: list[OvnAgentRow], now: int, agent_down_time: int) -> list[Judged]:
    """NeutronAgent.alive and its subclasses' on each row, as of `now` (µs). A row whose nb_cfg is
    not an integer is down (Neutron's int() raises and the whole listing fails)."""
    limit = agent_down_time * MICROS
    out = []
    controller_up = False
    for row in rows:
        age = now - row.heartbeat_timestamp
        up = row.nb_cfg is not None and (row.nb_global_nb_cfg - row.nb_cfg <= 1 or age < limit)
        if row.binary == "ovn-controller":
            controller_up = up
        else:  # listed right after its chassis' controller
            up = up and controller_up
        out.append(
            Judged(
                PROJECT, "", row.binary, row.host, row.availability_zone, up, row.heartbeat_timestamp, age, False, row
            )
        )
    return out


@dataclass(frozen=True)
class OvnReading:
    """What OVN's databases said in one reading."""

    databases: list[DatabaseHealth]  # (ovn_nb), then (ovn_sb)
    rows: list[OvnAgentRow] = field(default_factory=list)
    orphaned: int = 0
    nb_cfg: int | None = None
    liveness_check: float | None = None  # NB_Global's neutron:liveness_check_at, Unix seconds

    @property
    def complete(self) -> bool:
        return all(db.up for db in self.databases)


def _read(
    remote: Remote, database: str, selects: tuple[Select, ...], deadline: float
) -> tuple[float, Tables | Exception]:
    started = time.monotonic()
    result: Tables | Exception
    try:
        result = ovsdb.read(remote, database, selects, deadline)
    except Exception as exc:  # failure is data: it becomes the database's health
        result = exc
    return time.monotonic() - started, result


def _liveness(external_ids: dict[str, Any]) -> float | None:
    """neutron-server writes str(utcnow(with_timezone=True)) (CheckLivenessCommand)."""
    try:
        return datetime.datetime.fromisoformat(external_ids[LIVENESS_CHECK]).timestamp()
    except (KeyError, ValueError):
        return None


class _Built(NamedTuple):
    """The agents made from the monitors' tables, kept while the tables are the same objects."""

    nb: Tables
    sb: Tables
    rows: list[OvnAgentRow]
    orphaned: int


class PendingOvn:
    """The two databases being read on the reading context's pool."""

    def __init__(self, ctx: ReadContext, config: OvnConfig, deadline: float):
        self.started = time.monotonic()
        self.config = config
        self.futures = {
            NB_CELL: ctx.submit(_read, config.nb, NB_DATABASE, NB_SELECTS, deadline),
            SB_CELL: ctx.submit(_read, config.sb, SB_DATABASE, SB_SELECTS, deadline),
        }

    def _answer(
        self, cell: str, future: Future[tuple[float, Tables | Exception]], budget: float
    ) -> tuple[DatabaseHealth, Tables | None]:
        lists = cell == SB_CELL  # the agents are the southbound's chassis; the northbound gives nb_cfg
        duration, result = future.result() if future.done() else (time.monotonic() - self.started, TimeoutError())
        if isinstance(result, TimeoutError):
            future.cancel()
            return DatabaseHealth(
                PROJECT, cell, False, duration, f"no answer within {budget:g}s", lists_services=lists
            ), None
        if isinstance(result, Exception):
            return DatabaseHealth(PROJECT, cell, False, duration, describe(result), lists_services=lists), None
        return DatabaseHealth(PROJECT, cell, True, duration, lists_services=lists), result

    def collect(self, deadline: float, budget: float) -> OvnReading:
        wait(self.futures.values(), timeout=max(0.0, deadline - time.monotonic()))
        (nb, nb_rows), (sb, sb_rows) = (self._answer(c, f, budget) for c, f in self.futures.items())
        if nb_rows is not None and not nb_rows["NB_Global"]:
            nb, nb_rows = (
                DatabaseHealth(PROJECT, NB_CELL, False, nb.duration, "NB_Global has no row", lists_services=False),
                None,
            )
        if nb_rows is None or sb_rows is None:
            return OvnReading([nb, sb])
        nb_cfg, liveness = next(iter(nb_rows["NB_Global"].values()))  # a root table of one row at most
        cache = self.config.built
        built = cache[0] if cache else None
        if built is None or built.nb is not nb_rows or built.sb is not sb_rows:  # the tables changed
            rows, orphaned = agents_of(nb_cfg, sb_rows["Chassis_Private"].values(), sb_rows["Chassis"])
            cache[:] = [built := _Built(nb_rows, sb_rows, rows, orphaned)]
        return OvnReading([nb, sb], built.rows, built.orphaned, nb_cfg, liveness)


@dataclass(frozen=True)
class OvnConfig:
    """The OVN databases as neutron-server is configured to reach them."""

    nb: Remote
    sb: Remote
    # The agents of the last reading's tables (one at most): the configuration lives as long as the
    # source, so what it keeps goes with it, unlike a module's cache of every configuration ever read.
    built: list[_Built] = field(default_factory=list, compare=False, repr=False)

    def submit(self, ctx: ReadContext, deadline: float) -> PendingOvn:
        """Starts reading both databases; PendingOvn.collect gives the answer by the deadline."""
        return PendingOvn(ctx, self, deadline)

    def read(self, ctx: ReadContext, deadline: float, budget: float) -> OvnReading:
        return self.submit(ctx, deadline).collect(deadline, budget)


def ovn_config(conf: cfg.ConfigOpts, where: str = "neutron") -> OvnConfig:
    """From a ConfigOpts where OVN_OPTS are registered (the Neutron source's, over ml2_conf.ini).
    Like neutron-server, an ssl: connection without its three files is a configuration error."""
    remotes = {}
    for db in ("nb", "sb"):

        def get(name: str, db: str = db) -> Any:
            return getattr(conf.ovn, f"ovn_{db}_{name}")

        remote = Remote(tuple(get("connection")), get("private_key"), get("certificate"), get("ca_cert"))
        if not remote.connections:
            raise ConfigError(f"{where}: [ovn] ovn_{db}_connection is empty")
        if any(c.startswith("ssl:") for c in remote.connections):
            missing = [f"ovn_{db}_{n}" for n in ("private_key", "certificate", "ca_cert") if not get(n)]
            if missing:
                raise ConfigError(f"{where}: [ovn] ovn_{db}_connection uses ssl: but {', '.join(missing)} is not set")
        remotes[db] = remote
    return OvnConfig(remotes["nb"], remotes["sb"])


def missing_library() -> str | None:
    """Why OVN cannot be read in this installation (the optional extra [ovn] is missing), or None."""
    return None if ovsdb.available() else ovsdb.MISSING


def health_families(reading: OvnReading, prefix: str) -> Iterable[GaugeMetricFamily]:
    """OVN's own health: neutron-server's pings and the orphaned Chassis_Private rows."""
    nb_cfg = GaugeMetricFamily(
        prefix + "service_ovn_nb_cfg",
        "NB_Global.nb_cfg of OVN's northbound database: neutron-server's pings raise it, "
        "and an OVN agent is alive while its own nb_cfg is at most 1 behind.",
        labels=["project"],
    )
    pinged = GaugeMetricFamily(
        prefix + "service_ovn_liveness_check_timestamp_seconds",
        "Unix time of neutron-server's last ping of the OVN agents (NB_Global "
        "external_ids neutron:liveness_check_at); without pings a dead agent can still "
        "pass the nb_cfg test.",
        labels=["project"],
    )
    orphaned = GaugeMetricFamily(
        prefix + "service_exporter_ovn_orphaned_chassis",
        "Chassis_Private rows whose Chassis is gone: no agent is shown for them (as in a "
        "freshly started neutron-server).",
        labels=["project"],
    )
    if reading.complete:
        if reading.nb_cfg is not None:
            nb_cfg.add_metric([PROJECT], reading.nb_cfg)
        orphaned.add_metric([PROJECT], reading.orphaned)
        if reading.liveness_check is not None:
            pinged.add_metric([PROJECT], reading.liveness_check)
    return nb_cfg, pinged, orphaned


def record(row: OvnAgentRow) -> dict[str, Any]:
    """The fields of `list --format json` an OVN agent has beyond a Neutron agent's."""
    return {"chassis": row.chassis, "nb_cfg": row.nb_cfg, "nb_global_nb_cfg": row.nb_global_nb_cfg}
