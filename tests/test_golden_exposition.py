"""The whole exposition for a fixed snapshot at a frozen instant, byte for byte.

Regenerate after a deliberate change with: UPDATE_GOLDEN=1 python3 -m pytest tests/test_golden_exposition.py
and review the diff like code: dashboards and alerts depend on every name and label in it.
"""

from __future__ import annotations

import datetime
import os
import pathlib

import pytest
from cloud import T
from helpers import API_CELL, CellHealth, nova_snapshot, samples, to_us

from openstack_service_exporter import __version__
from openstack_service_exporter.collector import families
from openstack_service_exporter.config import Settings
from openstack_service_exporter.exposition import render
from openstack_service_exporter.snapshot import Snapshot
from openstack_service_exporter.sources.nova import NovaConfig
from openstack_service_exporter.sources.nova.tables import CELL0_UUID
from openstack_service_exporter.sources.nova.verdict import ServiceRow

GOLDEN = pathlib.Path(__file__).parent / "golden"


def snapshot(config: NovaConfig | None = None) -> Snapshot:
    def row(cell, id_, host, binary, topic, seen, **kw):
        base = dict(
            report_count=10 * id_,
            disabled=False,
            disabled_reason=None,
            forced_down=False,
            version=66,
            uuid=f"uuid-{id_}",
            created_at=to_us(datetime.datetime(2012, 9, 18, 2, 46, 27)),
            updated_at=seen,
            last_seen_up=seen,
        )
        base.update(kw)
        return ServiceRow(cell, id_, host, binary, topic, **base)

    rows = [
        row("cell0", 1, "ctl1", "nova-scheduler", "scheduler", to_us(T) - 9_000_000),
        row(
            "cell1",
            2,
            "cmp1",
            "nova-compute",
            "compute",
            to_us(T) - 6_000_000,
            disabled=True,
            disabled_reason='AUTO: Connection to libvirt lost: "1"',
        ),
        row("cell1", 3, "cmp2", "nova-compute", "compute", to_us(T) - 3_600_000_000),
        row("cell1", 4, "cmp3", "nova-compute", "compute", to_us(T) + 2_500_000, forced_down=True),
        row("cell1", 5, "cmp4", "nova-compute", "compute", None, created_at=None, updated_at=None, version=None),
    ]
    cells = [
        CellHealth("cell0", True, 0.0125, uuid=CELL0_UUID, skew=-0.25),
        CellHealth("cell1", True, 0.025, uuid="c1", skew=0.5, duplicates=1),
        CellHealth("cell2", False, 10.0, error="timed out", uuid="c2"),
    ]
    return nova_snapshot(
        to_us(T),
        rows,
        cells,
        api=CellHealth(API_CELL, True, 0.003),
        host_zones={"cmp1": "az1", "cmp2": "az1,az2"},
        zones_known=True,
        config=config,
    )


def check(name: str, text: str) -> None:
    """Compare with the golden file, whose build_info says @VERSION@ so that a release changes no golden."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text.replace(f'version="{__version__}"', 'version="@VERSION@"'))
        pytest.fail(f"{name} written anew: review its diff, then run without UPDATE_GOLDEN")
    assert text == path.read_text().replace("@VERSION@", __version__)


def test_golden_default_prefix():
    text = render(families(snapshot(), Settings(), to_us(T) + 2_000_000, "pymysql")).decode()
    check("metrics.prom", text)
    got = samples(text)  # round trip through prometheus_client's parser
    assert (
        got[
            (
                "service_up",
                frozenset(
                    {
                        ("cell", "cell1"),
                        ("binary", "nova-compute"),
                        ("host", "cmp2"),
                        ("zone", "az1,az2"),
                        ("project", "nova"),
                    }
                ),
            )
        ]
        == 0.0
    )
    assert got[("service_exporter_snapshot_age_seconds", frozenset())] == 2.0


def test_golden_with_prefix_and_overridden_down_time():
    nova = NovaConfig(
        service_down_time=5,
        report_interval=7,
        default_availability_zone="zone-default",
        internal_service_availability_zone="ctl",
    )
    text = render(families(snapshot(nova), Settings(metric_prefix="openstack_nova_"), to_us(T), "mysqldb")).decode()
    check("metrics_prefixed.prom", text)
    got = samples(text)
    assert got[("openstack_nova_service_down_time_seconds", frozenset({("project", "nova")}))] == 17.0  # int(2.5 x 7)
    zones = {dict(labels)["zone"] for name, labels in got if name == "openstack_nova_service_up"}
    assert {"zone-default", "ctl"} <= zones


def test_collector_on_its_own_registry():
    """The collector works with prometheus_client's registry too; nothing runs at registration."""
    from helpers import SnapshotCollector
    from prometheus_client import CollectorRegistry

    calls = []

    def get_snapshot():
        calls.append(1)
        return snapshot()

    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(get_snapshot, Settings(), lambda: to_us(T), "pymysql"))
    assert calls == []  # no database reading at registration
    labels = {"project": "nova", "cell": "cell1", "binary": "nova-compute", "host": "cmp1", "zone": "az1"}
    assert registry.get_sample_value("service_up", labels) == 1.0
    assert registry.get_sample_value("service_disabled", labels) == 1.0
    assert registry.get_sample_value("service_exporter_database_up", {"project": "nova", "cell": "cell2"}) == 0.0
    assert len(calls) == 3  # a fresh reading at every collect (get_sample_value collects)
