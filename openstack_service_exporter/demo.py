"""The embedded demo cloud: each project's tables in SQLite, a small cloud, and a heartbeat simulator.

It needs no project configuration and no database server. The simulator writes exactly what each
service writes on each beat (Nova: report_count + 1, last_seen_up and updated_at set to the same UTC
instant; Cinder: report_count + 1 and updated_at; whole seconds as MariaDB stores them), and the
exporter reads it through the very same code path as `serve`.

Scenario, repeating every `period` seconds:
  Nova   cmp-az1-02  dead in the first half of each period (starts with a heartbeat 5 minutes old)
         cmp-az2-03  dead in the second half of each period
         cmp-az2-01  disabled by Nova itself (disabled_reason 'AUTO: ...'), still heartbeating, so up
         cmp-az1-03  forced down by an operator, still heartbeating, so down
  Cinder st-01@ceph  a volume backend, dead in the second half of each period
         ctl-01@lvm, the scheduler and the backup service: always up
  Neutron  Open vSwitch agents on ctl-01 and the computes, DHCP, L3 and metadata agents on net-01;
         the Open vSwitch agent of cmp-az2-02 dead in the first half of each period; the L3 agent of
         net-02 administratively down (and alive)
  Ironic bm-cond-01 and bm-cond-02 in conductor group rack-a; bm-cond-02 dead in the second half of each
         period; bm-cond-03 stopped cleanly (offline)
  ML2/OVN  when OVN's ovsdb-server is installed: a gateway chassis and compute chassis with metadata
         agents in OVN's own databases (demo_ovn.py); else one line says that part is off
"""

from __future__ import annotations

import datetime
import logging
import os
import tempfile
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from . import demo_ovn
from .ovn_servers import OvnDatabases
from .sources.cinder import CinderConfig
from .sources.ironic import IronicConfig
from .sources.neutron import NeutronConfig
from .sources.nova import NovaConfig
from .sources.nova.tables import CELL0_UUID
from .sources.nova.verdict import API_BINARIES

LOG = logging.getLogger(__name__)

metadata = sa.MetaData()
# Nova's `services` table (nova-manage db sync, Nova 34), column for column.
SERVICES = sa.Table(
    "services",
    metadata,
    sa.Column("created_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime),
    sa.Column("deleted_at", sa.DateTime),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("host", sa.String(255)),
    sa.Column("binary", sa.String(255)),
    sa.Column("topic", sa.String(255)),
    sa.Column("report_count", sa.Integer, nullable=False),
    sa.Column("disabled", sa.Boolean),
    sa.Column("deleted", sa.Integer),
    sa.Column("disabled_reason", sa.String(255)),
    sa.Column("last_seen_up", sa.DateTime),
    sa.Column("forced_down", sa.Boolean),
    sa.Column("version", sa.Integer),
    sa.Column("uuid", sa.String(36)),
    sa.UniqueConstraint("host", "topic", "deleted"),
    sa.UniqueConstraint("host", "binary", "deleted"),
    sa.UniqueConstraint("uuid"),
)
api_metadata = sa.MetaData()
CELL_MAPPINGS = sa.Table(
    "cell_mappings",
    api_metadata,
    sa.Column("created_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("name", sa.String(255)),
    sa.Column("transport_url", sa.Text),
    sa.Column("database_connection", sa.Text),
    sa.Column("disabled", sa.Boolean),
)
AGGREGATES = sa.Table(
    "aggregates",
    api_metadata,
    sa.Column("created_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36)),
    sa.Column("name", sa.String(255), unique=True),
)
AGGREGATE_HOSTS = sa.Table(
    "aggregate_hosts",
    api_metadata,
    sa.Column("created_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("host", sa.String(255)),
    sa.Column("aggregate_id", sa.Integer, sa.ForeignKey("aggregates.id"), nullable=False),
    sa.UniqueConstraint("host", "aggregate_id"),
)
AGGREGATE_METADATA = sa.Table(
    "aggregate_metadata",
    api_metadata,
    sa.Column("created_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("aggregate_id", sa.Integer, sa.ForeignKey("aggregates.id"), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("value", sa.String(255), nullable=False),
    sa.UniqueConstraint("aggregate_id", "key"),
)

AZ_HOSTS = {"az1": ["cmp-az1-01", "cmp-az1-02", "cmp-az1-03"], "az2": ["cmp-az2-01", "cmp-az2-02", "cmp-az2-03"]}
# Cinder's `services` table (cinder-manage db sync, Cinder 29), column for column.
cinder_metadata = sa.MetaData()
CINDER_SERVICES = sa.Table(
    "services",
    cinder_metadata,
    sa.Column("created_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime),
    sa.Column("deleted_at", sa.DateTime),
    sa.Column("deleted", sa.Boolean),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("host", sa.String(255)),
    sa.Column("binary", sa.String(255)),
    sa.Column("topic", sa.String(255)),
    sa.Column("report_count", sa.Integer, nullable=False),
    sa.Column("disabled", sa.Boolean),
    sa.Column("availability_zone", sa.String(255)),
    sa.Column("disabled_reason", sa.String(255)),
    sa.Column("modified_at", sa.DateTime),
    sa.Column("rpc_current_version", sa.String(36)),
    sa.Column("object_current_version", sa.String(36)),
    sa.Column("replication_status", sa.String(36)),
    sa.Column("active_backend_id", sa.String(255)),
    sa.Column("frozen", sa.Boolean),
    sa.Column("cluster_name", sa.String(255)),
    sa.Column("uuid", sa.String(36), unique=True),
)

# Neutron's `agents` (neutron-db-manage upgrade heads, Neutron 29) and Ironic's `conductors` (ironic-dbsync
# upgrade, Ironic 39), the columns the exporter reads and those that have no default.
neutron_metadata = sa.MetaData()
NEUTRON_AGENTS = sa.Table(
    "agents",
    neutron_metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("agent_type", sa.String(255), nullable=False),
    sa.Column("binary", sa.String(255), nullable=False),
    sa.Column("topic", sa.String(255), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("admin_state_up", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("heartbeat_timestamp", sa.DateTime, nullable=False),
    sa.Column("configurations", sa.String(4095), nullable=False),
    sa.Column("availability_zone", sa.String(255)),
    sa.UniqueConstraint("agent_type", "host"),
)
ironic_metadata = sa.MetaData()
IRONIC_CONDUCTORS = sa.Table(
    "conductors",
    ironic_metadata,
    sa.Column("created_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("hostname", sa.String(255), nullable=False, unique=True),
    sa.Column("drivers", sa.Text),
    sa.Column("online", sa.Boolean),
    sa.Column("version", sa.String(15)),
    sa.Column("conductor_group", sa.String(255), nullable=False),
)

SPARE_HOST = "cmp-spare-01"  # in no AZ aggregate: default_availability_zone
DEAD_FIRST_HALF = "cmp-az1-02"
DEAD_SECOND_HALF = "cmp-az2-03"
DEAD_BACKEND = "st-01@ceph"  # a Cinder volume backend, dead in the second half
DEAD_AGENT_HOST = "cmp-az2-02"  # its Neutron Open vSwitch agent (not its nova-compute) dead in the first half
DEAD_CONDUCTOR = "bm-cond-02"  # an Ironic conductor, dead in the second half
AUTO_DISABLED = "cmp-az2-01"
FORCED_DOWN = "cmp-az1-03"


def utcnow() -> datetime.datetime:
    # MariaDB keeps whole seconds in these DATETIME columns; so does the demo.
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)


@dataclass
class DemoCloud:
    directory: str
    api_url: str
    cell_urls: dict[str, str]
    cinder_url: str
    neutron_url: str
    ironic_url: str
    period: float
    report_interval: float
    ovn: OvnDatabases | None = None  # ML2/OVN's databases, when OVN's server is installed

    def stop(self) -> None:
        """Stops the servers the demo started (its SQLite files need none)."""
        if self.ovn is not None:
            self.ovn.stop()

    def engines(self) -> dict[str, sa.Engine]:
        """Nova's cells, then "cinder", "neutron" and "ironic"."""
        urls = {**self.cell_urls, "cinder": self.cinder_url, "neutron": self.neutron_url, "ironic": self.ironic_url}
        return {name: sa.create_engine(url) for name, url in urls.items()}


def build(directory: str | None = None, period: float = 60.0, report_interval: float = 2.0) -> DemoCloud:
    directory = directory or tempfile.mkdtemp(prefix="openstack-demo-")
    api_url = "sqlite:///" + os.path.join(directory, "nova_api.sqlite")
    cell_urls = {
        "cell0": "sqlite:///" + os.path.join(directory, "nova_cell0.sqlite"),
        "cell1": "sqlite:///" + os.path.join(directory, "nova_cell1.sqlite"),
    }
    now = utcnow()
    api = sa.create_engine(api_url)
    api_metadata.create_all(api)
    with api.begin() as conn:
        conn.execute(
            CELL_MAPPINGS.insert(),
            [
                {
                    "uuid": CELL0_UUID,
                    "name": "cell0",
                    "database_connection": cell_urls["cell0"],
                    "transport_url": "none:///",
                    "disabled": False,
                    "created_at": now,
                },
                {
                    "uuid": str(uuidlib.uuid4()),
                    "name": "cell1",
                    "database_connection": cell_urls["cell1"],
                    "transport_url": "rabbit://demo",
                    "disabled": False,
                    "created_at": now,
                },
            ],
        )
        for agg_id, (zone, hosts) in enumerate(AZ_HOSTS.items(), start=1):
            conn.execute(AGGREGATES.insert(), {"id": agg_id, "uuid": str(uuidlib.uuid4()), "name": f"agg-{zone}"})
            conn.execute(
                AGGREGATE_METADATA.insert(), {"aggregate_id": agg_id, "key": "availability_zone", "value": zone}
            )
            conn.execute(AGGREGATE_HOSTS.insert(), [{"aggregate_id": agg_id, "host": h} for h in hosts])
    api.dispose()

    def service(host: str, binary: str, topic: str | None, **extra: Any) -> dict[str, Any]:
        # Every row names every column: a multi-row INSERT takes its column list from the first row.
        row = {
            "host": host,
            "binary": binary,
            "topic": topic,
            "report_count": 0,
            "disabled": False,
            "disabled_reason": None,
            "deleted": 0,
            "forced_down": False,
            "version": 66,
            "uuid": str(uuidlib.uuid4()),
            "created_at": now - datetime.timedelta(days=30),
            "updated_at": now,
            "last_seen_up": now,
        }
        row.update(extra)
        return row

    cells = {
        "cell0": [
            service("ctl-01", "nova-scheduler", "scheduler"),
            service("ctl-01", "nova-conductor", "conductor"),
            # The API binaries have rows but never heartbeat; Nova does not list them.
            service("ctl-01", "nova-osapi_compute", None, last_seen_up=None),
        ],
        "cell1": [service("ctl-01", "nova-conductor", "conductor")]
        + [service(h, "nova-compute", "compute") for hosts in AZ_HOSTS.values() for h in hosts]
        + [service(SPARE_HOST, "nova-compute", "compute")],
    }
    for row in cells["cell1"]:
        if row["host"] == DEAD_FIRST_HALF:
            row["last_seen_up"] = row["updated_at"] = now - datetime.timedelta(minutes=5)
        if row["host"] == AUTO_DISABLED:
            row.update(disabled=True, disabled_reason="AUTO: Connection to libvirt lost: 1")
        if row["host"] == FORCED_DOWN:
            row["forced_down"] = True
    for name, url in cell_urls.items():
        engine = sa.create_engine(url)
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(SERVICES.insert(), cells[name])
        engine.dispose()
    urls = {name: "sqlite:///" + os.path.join(directory, f"{name}.sqlite") for name in ("cinder", "neutron", "ironic")}
    build_cinder(urls["cinder"], now)
    build_neutron(urls["neutron"], now)
    build_ironic(urls["ironic"], now)
    return DemoCloud(
        directory,
        api_url,
        cell_urls,
        urls["cinder"],
        urls["neutron"],
        urls["ironic"],
        period,
        report_interval,
        demo_ovn.start(directory),
    )


def _fill(url: str, metadata: sa.MetaData, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    engine.dispose()


def build_neutron(url: str, now: datetime.datetime) -> None:
    def agent(
        host: str, agent_type: str, binary: str, topic: str, zone: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        row = {
            "id": str(uuidlib.uuid4()),
            "agent_type": agent_type,
            "binary": binary,
            "topic": topic,
            "host": host,
            "admin_state_up": True,
            "created_at": now - datetime.timedelta(days=30),
            "started_at": now - datetime.timedelta(days=2),
            "heartbeat_timestamp": now,
            "configurations": "{}",
            "availability_zone": zone,
        }
        row.update(extra)
        return row

    ovs = [
        agent(h, "Open vSwitch agent", "neutron-openvswitch-agent", "N/A")
        for h in ["ctl-01", "net-01", "net-02"] + [h for hosts in AZ_HOSTS.values() for h in hosts]
    ]
    _fill(
        url,
        neutron_metadata,
        NEUTRON_AGENTS,
        ovs
        + [
            agent("net-01", "DHCP agent", "neutron-dhcp-agent", "dhcp_agent", "az1"),
            agent("net-01", "L3 agent", "neutron-l3-agent", "l3_agent", "az1"),
            agent("net-02", "L3 agent", "neutron-l3-agent", "l3_agent", "az2", admin_state_up=False),
            agent("net-01", "Metadata agent", "neutron-metadata-agent", "N/A"),
        ],
    )


def build_ironic(url: str, now: datetime.datetime) -> None:
    def conductor(hostname: str, group: str, **extra: Any) -> dict[str, Any]:
        row = {
            "hostname": hostname,
            "drivers": '["ipmi", "redfish"]',
            "online": True,
            "version": "1.6",
            "conductor_group": group,
            "created_at": now - datetime.timedelta(days=30),
            "updated_at": now,
        }
        row.update(extra)
        return row

    _fill(
        url,
        ironic_metadata,
        IRONIC_CONDUCTORS,
        [
            conductor("bm-cond-01", "rack-a"),
            conductor(DEAD_CONDUCTOR, "rack-a"),
            conductor("bm-cond-03", "", online=False, updated_at=now - datetime.timedelta(hours=1)),
        ],
    )


def build_cinder(url: str, now: datetime.datetime) -> None:
    def service(host: str, binary: str, **extra: Any) -> dict[str, Any]:
        row = {
            "host": host,
            "binary": binary,
            "topic": binary,
            "report_count": 0,
            "disabled": False,
            "availability_zone": "nova",
            "disabled_reason": None,
            "deleted": False,
            "frozen": False,
            "replication_status": "not-capable",
            "active_backend_id": None,
            "cluster_name": None,
            "rpc_current_version": "3.20",
            "object_current_version": "1.39",
            "uuid": str(uuidlib.uuid4()),
            "created_at": now - datetime.timedelta(days=30),
            "updated_at": now,
            "modified_at": None,
        }
        row.update(extra)
        return row

    engine = sa.create_engine(url)
    cinder_metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            CINDER_SERVICES.insert(),
            [
                service("ctl-01", "cinder-scheduler", rpc_current_version="3.12"),
                service("ctl-01@lvm", "cinder-volume", cluster_name="ctl-01@lvm"),
                service(DEAD_BACKEND, "cinder-volume", availability_zone="az2"),
                service("ctl-01", "cinder-backup", rpc_current_version="2.4"),
            ],
        )
    engine.dispose()


def sources(
    cloud: DemoCloud, down_time: int, report_interval: int
) -> tuple[NovaConfig, CinderConfig, NeutronConfig, IronicConfig]:
    """The demo cloud's projects, configured as the exporter would configure them from their files."""
    return (
        NovaConfig(
            service_down_time=down_time,
            report_interval=report_interval,
            database_connection=cloud.cell_urls["cell1"],
            api_database_connection=cloud.api_url,
        ),
        CinderConfig(cloud.cinder_url, service_down_time=down_time),
        NeutronConfig(
            cloud.neutron_url,
            agent_down_time=down_time,
            mechanism_drivers=("openvswitch", "ovn") if cloud.ovn else (),
            ovn_databases=demo_ovn.remotes(cloud.ovn) if cloud.ovn else None,
        ),
        IronicConfig(cloud.ironic_url, heartbeat_timeout=down_time),
    )


def is_dead(host: str, elapsed: float, period: float) -> bool:
    first_half = (elapsed % period) < period / 2
    return (host in (DEAD_FIRST_HALF, demo_ovn.DYING) and first_half) or (
        host in (DEAD_SECOND_HALF, DEAD_BACKEND, DEAD_CONDUCTOR) and not first_half
    )


def beat_once(cloud: DemoCloud, engines: dict[str, sa.Engine], elapsed: float) -> None:
    """One heartbeat round: what each live service writes. Nova (nova-conductor for it,
    nova/servicegroup/drivers/db.py, _report_state): report_count + 1, last_seen_up = updated_at = now.
    Cinder (cinder/service.py, Service.report_state): report_count + 1, and updated_at by the model's
    onupdate."""
    now = utcnow()
    for name, engine in engines.items():
        if name == "neutron":  # neutron-server, when an agent reports (neutron/db/agents_db.py)
            dead = [DEAD_AGENT_HOST] if is_dead(DEAD_FIRST_HALF, elapsed, cloud.period) else []
            with engine.begin() as conn:
                conn.execute(
                    NEUTRON_AGENTS.update()
                    .where(NEUTRON_AGENTS.c.host.not_in(dead))
                    .where(NEUTRON_AGENTS.c.binary == "neutron-openvswitch-agent")
                    .values(heartbeat_timestamp=now)
                )
                conn.execute(
                    NEUTRON_AGENTS.update()
                    .where(NEUTRON_AGENTS.c.binary != "neutron-openvswitch-agent")
                    .values(heartbeat_timestamp=now)
                )
            continue
        if name == "ironic":  # ironic-conductor's touch_conductor (ironic/db/sqlalchemy/api.py)
            alive = [h for h in ("bm-cond-01", DEAD_CONDUCTOR) if not is_dead(h, elapsed, cloud.period)]
            with engine.begin() as conn:
                conn.execute(
                    IRONIC_CONDUCTORS.update().where(IRONIC_CONDUCTORS.c.hostname.in_(alive)).values(updated_at=now)
                )
            continue
        table, stamps = (
            (CINDER_SERVICES, {"updated_at": now})
            if name == "cinder"
            else (SERVICES, {"last_seen_up": now, "updated_at": now})
        )
        with engine.begin() as conn:
            for sid, host, binary in conn.execute(
                sa.select(table.c.id, table.c.host, table.c.binary).where(sa.not_(table.c.deleted))
            ):
                if binary in API_BINARIES or is_dead(host, elapsed, cloud.period):
                    continue
                conn.execute(
                    table.update().where(table.c.id == sid).values(report_count=table.c.report_count + 1, **stamps)
                )


class Simulator:
    """Runs beat_once every report_interval in a daemon thread until stopped."""

    def __init__(self, cloud: DemoCloud):
        self.cloud = cloud
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeats", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        engines = self.cloud.engines()
        started = time.monotonic()
        last_state: dict[str, bool] = {}
        nb_cfg = demo_ovn.FIRST_NB_CFG
        hosts = [DEAD_FIRST_HALF, DEAD_SECOND_HALF, DEAD_BACKEND, DEAD_CONDUCTOR]
        hosts += [demo_ovn.DYING] if self.cloud.ovn else []
        while not self._stop.is_set():
            elapsed = time.monotonic() - started
            for host in hosts:
                dead = is_dead(host, elapsed, self.cloud.period)
                if last_state.get(host) != dead:
                    LOG.info("demo: %s %s heart-beating", host, "stops" if dead else "starts")
                    last_state[host] = dead
            try:
                beat_once(self.cloud, engines, elapsed)
            except sa.exc.OperationalError as exc:  # e.g. "database is locked" under a long read
                LOG.warning("demo: heartbeat round skipped: %s", exc.orig)
            if self.cloud.ovn:
                nb_cfg += 1
                dying = {demo_ovn.DYING} if is_dead(demo_ovn.DYING, elapsed, self.cloud.period) else set()
                try:
                    demo_ovn.beat(self.cloud.ovn, nb_cfg, dying)
                except (OSError, RuntimeError) as exc:
                    LOG.warning("demo: OVN heartbeat round skipped: %s", exc)
            self._stop.wait(self.cloud.report_interval)
        for engine in engines.values():
            engine.dispose()
