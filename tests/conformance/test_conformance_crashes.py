"""Rows on which Nova 34.0.0 itself fails, and the answer the exporter deliberately gives instead.

These rows are kept out of the row-for-row comparison: there is no Nova answer to compare with. Each
test first shows, by asking real Nova, that it does fail, then states the exporter's answer.
"""

from __future__ import annotations

import datetime

import exporter_side
import nova_side
import pytest
from cloud import T, service
from helpers import series
from random_clouds import Cloud, Options

pytestmark = pytest.mark.conformance

NOW = T + datetime.timedelta(seconds=5, microseconds=500_000)


def hand_made(cells: dict[str, list[dict]]) -> Cloud:
    services = {
        cell: [dict(row, id=number) for number, row in enumerate(rows, start=1)] for cell, rows in cells.items()
    }
    return Cloud(None, NOW, Options(), services, [])


def ask_both(cloud, deployment, judge, conf):
    """Nova's raw answer, the exporter's JSON records and its /metrics verdicts, all at NOW."""
    deployment.load(cloud)
    deployment.write_conf(conf, cloud.options)
    seen, records = exporter_side.listed(conf, NOW)
    assert seen == NOW  # half a second: exact in freezegun's float of seconds
    scraped = exporter_side.scraped(conf, NOW)
    return judge.ask(conf, NOW), records, exporter_side.from_exposition(scraped), scraped


def record(records, host):
    [found] = [r for r in records if r["host"] == host]
    return found


def test_no_heartbeat_at_all_is_down(nova_deployment, nova_judge, tmp_path):
    """created_at and last_seen_up both NULL. Nova: DbDriver.is_up calls None.replace() and raises,
    so GET /os-services answers 500 for the whole deployment. The exporter: that service is down,
    with no heartbeat age, and every other row is judged as usual."""
    cloud = hand_made(
        {"cell1": [service("cmp-ok"), service("cmp-never", created_at=None, last_seen_up=None, updated_at=None)]}
    )
    answer, records, scraped, text = ask_both(cloud, nova_deployment, nova_judge, tmp_path / "nova.conf")

    by_host = {s["host"]: s for s in nova_side.cell_answer(answer, "cell1")["services"]}
    assert by_host["cmp-never"]["error"] == "AttributeError: 'NoneType' object has no attribute 'replace'"
    assert by_host["cmp-ok"]["state"] == "up"

    never = record(records, "cmp-never")
    assert (never["state"], never["heartbeat_age_seconds"], never["last_seen_up"]) == ("down", None, None)
    assert record(records, "cmp-ok")["state"] == "up"
    assert {v.host: v.state for v in scraped} == {"cmp-ok": "up", "cmp-never": "down"}
    ages = series(text, "service_heartbeat_age_seconds")
    assert ("cell1", "nova-compute", "cmp-ok") in ages and ("cell1", "nova-compute", "cmp-never") not in ages


@pytest.mark.parametrize("column", ["disabled", "forced_down"])
def test_null_flag_reads_false(column, nova_deployment, nova_judge, tmp_path):
    """disabled or forced_down NULL (rows older than the column's default). Nova: the Service object
    refuses None for a boolean field, so ServiceList.get_all fails for the whole cell and GET
    /os-services answers 200 with every service of that cell missing. The exporter: NULL is false,
    the cell's services are all listed, and the other cells agree with Nova as usual."""
    cloud = hand_made(
        {
            "cell1": [service("cmp-a"), service("cmp-null", **{column: None})],
            "cell2": [service("cmp-c", disabled=1, disabled_reason="kept apart")],
        }
    )
    answer, records, scraped, _ = ask_both(cloud, nova_deployment, nova_judge, tmp_path / "nova.conf")

    # Nova drops cell1 entirely (nova/objects/service.py, _from_db_object, through oslo.versionedobjects).
    assert nova_side.cell_answer(answer, "cell1")["error"] == f"ValueError: Field `{column}' cannot be None"
    [cmp_c] = nova_side.cell_answer(answer, "cell2")["services"]

    null = record(records, "cmp-null")
    assert (null["cell"], null["status"], null["forced_down"], null["state"]) == ("cell1", "enabled", False, "up")
    assert record(records, "cmp-a")["state"] == "up"
    c = record(records, "cmp-c")
    assert (c["state"], c["status"], c["zone"]) == (cmp_c["state"], cmp_c["status"], cmp_c["zone"])
    assert {(v.host, v.state, v.status, v.forced_down) for v in scraped} == {
        ("cmp-a", "up", "enabled", False),
        ("cmp-null", "up", "enabled", False),
        (cmp_c["host"], cmp_c["state"], cmp_c["status"], cmp_c["forced_down"]),
    }
