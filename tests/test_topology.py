"""Every cell and every availability zone, as GET /os-services shows them; one broken cell hides nothing else."""

from __future__ import annotations

import time

import pytest
from cloud import T, add_cell, add_zone, insert_services, service
from freezegun import freeze_time
from helpers import list_json, nova_settings, samples, scrape, series, served, to_us

from openstack_service_exporter.sources.nova.tables import CELL0_UUID, format_cell_url

# -- Nova's URL templating (nova/tests/unit/objects/test_cell_mapping.py) --------------------------


def test_nova_template_vector():
    base = "sqlite://bob:s3kret@localhost:123/nova?munchies=doritos#baz"
    template = "{scheme}://not{username}:{password}@{hostname}:1{port}/{path}?{query}&flavor=coolranch#{fragment}"
    assert (
        format_cell_url(template, base)
        == "sqlite://notbob:s3kret@localhost:1123/nova?munchies=doritos&flavor=coolranch#baz"
    )


def test_template_quirks():
    assert format_cell_url("{hostname}:{port}", "mysql://u:p@DB.Example:3306/x") == "db.example:3306"
    assert format_cell_url("{hostname}:{port}", "mysql://u:p@db/x") == "db:None"
    assert format_cell_url("{username}:{password}", "mysql://u%40x:p%2F@db/x") == "u%40x:p%2F"  # raw, not decoded
    assert format_cell_url("{{literal}}/{path}", "mysql://db/nova") == "{literal}/nova"
    assert format_cell_url("{nosuchkey}", "mysql://db/nova") == "{nosuchkey}"  # any error: raw string
    assert format_cell_url("mysql://x/{path}", None) == "mysql://x/{path}"  # no [database] connection
    multi = "rabbit://u1:p1@h1:1,u2:p2@h2:2/vhost"
    # urlparse reads the plain keys from the last host; the numbered keys give each one.
    assert format_cell_url("{hostname}:{port} {hostname1}:{port1} {username2}", multi) == "h2:2 h1:1 u2"


def test_multi_host_netloc_numbered_keys():
    assert (
        format_cell_url(
            "{username1}@{hostname1}:{port1} {username2}:{password2}@{hostname2}{port2}", "mysql://a:b@h1,c:d@h2/db"
        )
        == "a@h1:None c:d@h2None"
    )


# -- a multi-cell cloud with AZ aggregates ---------------------------------------------------


@pytest.fixture
def cloud(mariadb, new_db):
    api, cell0, cell1, cell2 = new_db("api"), new_db("services"), new_db("services"), new_db("services")
    base = mariadb.url(cell1)
    add_cell(mariadb, api, "cell0", mariadb.url(cell0), uuid=CELL0_UUID)
    add_cell(mariadb, api, "cell1", "{scheme}://{username}:{password}@{hostname}:{port}/" + cell1 + "?{query}")
    add_cell(mariadb, api, "cell2", mariadb.url(cell2), disabled=True)
    add_zone(mariadb, api, "agg-az1", ["cmp1", "cmp2", "ctl1"], "az1")
    add_zone(mariadb, api, "agg-az2", ["cmp2", "cmp3"], "az2")
    add_zone(mariadb, api, "agg-noaz", ["cmp4"], None)
    insert_services(mariadb, cell0, [service("ctl1", "nova-scheduler"), service("ctl1", "nova-conductor")])
    insert_services(
        mariadb,
        cell1,
        [
            service("ctl1", "nova-conductor"),
            service("cmp1"),
            service("cmp2"),
            service("cmp4"),
            service("ctl1", "nova-compute", topic="compute", deleted=7),
        ],
    )
    insert_services(
        mariadb,
        cell2,
        [
            service("ctl1", "nova-conductor"),
            service("cmp3"),
            service("CMP1"),
            service("cmp5", last_seen_up=T.replace(year=2011)),
        ],
    )
    return {
        "api": api,
        "cells": {"cell0": cell0, "cell1": cell1, "cell2": cell2},
        "args": ["--api_database-connection", mariadb.url(api), "--database-connection", base],
    }


EXPECTED_ZONES = {
    ("cell0", "nova-scheduler", "ctl1"): "internal",
    ("cell0", "nova-conductor", "ctl1"): "internal",
    ("cell1", "nova-conductor", "ctl1"): "internal",  # not a compute, though ctl1 is in az1
    ("cell1", "nova-compute", "cmp1"): "az1",
    ("cell1", "nova-compute", "cmp2"): "az1,az2",  # two AZ aggregates: sorted, joined
    ("cell2", "nova-compute", "CMP1"): "nova",  # host match is case-sensitive (cmp1 is in az1)
    ("cell1", "nova-compute", "cmp4"): "nova",  # aggregate without AZ metadata
    ("cell2", "nova-conductor", "ctl1"): "internal",  # same conductor host in another cell
    ("cell2", "nova-compute", "cmp3"): "az2",
    ("cell2", "nova-compute", "cmp5"): "nova",
}


def test_every_cell_and_zone_in_list(cloud):
    with freeze_time(T):
        records = list_json(cloud["args"])
    assert {(r["cell"], r["binary"], r["host"]): r["zone"] for r in records} == EXPECTED_ZONES
    assert [r["cell"] for r in records][:2] == ["cell0", "cell0"]  # cells in Nova's order
    assert {r["host"]: r["state"] for r in records if r["cell"] == "cell2"} == {
        "ctl1": "up",
        "cmp3": "up",
        "CMP1": "up",
        "cmp5": "down",
    }


def test_every_cell_and_zone_in_metrics(cloud):
    settings = nova_settings(api_database_connection=cloud["args"][1], database_connection=cloud["args"][3])
    with served(settings, clock=lambda: to_us(T)) as (base, _):
        text = scrape(base)
    zones = {
        (dict(k[1])["cell"], dict(k[1])["binary"], dict(k[1])["host"]): dict(k[1])["zone"]
        for k in samples(text)
        if k[0] == "service_up"
    }
    assert zones == EXPECTED_ZONES
    health = {dict(k[1])["cell"]: v for k, v in samples(text).items() if k[0] == "service_exporter_database_up"}
    assert health == {"cell0": 1.0, "cell1": 1.0, "cell2": 1.0, "(api_database)": 1.0}
    assert samples(text)[("service_exporter_zones_known", frozenset())] == 1.0


def test_broken_cells_leave_the_rest_intact_and_come_back(mariadb, cloud):
    settings = nova_settings(
        api_database_connection=cloud["args"][1], database_connection=cloud["args"][3], query_timeout=3
    )
    cell2 = cloud["cells"]["cell2"]
    with served(settings, clock=lambda: to_us(T)) as (base, _):
        mariadb.execute(f"RENAME TABLE `{cell2}`.services TO `{cell2}`.services_gone")
        text = scrape(base)
        up = series(text, "service_up")
        assert {c for c, _, _ in up} == {"cell0", "cell1"}
        health = {dict(k[1])["cell"]: v for k, v in samples(text).items() if k[0] == "service_exporter_database_up"}
        assert health["cell2"] == 0.0 and health["cell1"] == 1.0
        mariadb.execute(f"RENAME TABLE `{cell2}`.services_gone TO `{cell2}`.services")
        assert {c for c, _, _ in series(scrape(base), "service_up")} == {"cell0", "cell1", "cell2"}

        # The user loses its grant on one cell: only that cell goes to 0.
        cell1 = cloud["cells"]["cell1"]
        mariadb.execute(f"REVOKE ALL ON `{cell1}`.* FROM 'nova'@'%'")
        mariadb.kill_connections(cell1)
        try:
            text = scrape(base)
            assert {c for c, _, _ in series(text, "service_up")} == {"cell0", "cell2"}
            assert series(text, "service_up") and "cell1" not in {c for c, _, _ in series(text, "service_disabled")}
        finally:
            mariadb.execute(f"GRANT ALL ON `{cell1}`.* TO 'nova'@'%'")
        assert {c for c, _, _ in series(scrape(base), "service_up")} == {"cell0", "cell1", "cell2"}


def test_new_cell_appears_and_removed_cell_goes_without_restart(mariadb, new_db, cloud):
    settings = nova_settings(api_database_connection=cloud["args"][1], database_connection=cloud["args"][3])
    with served(settings, clock=lambda: to_us(T)) as (base, shared):
        assert {c for c, _, _ in series(scrape(base), "service_up")} == {"cell0", "cell1", "cell2"}
        cell3 = new_db("services")
        insert_services(mariadb, cell3, [service("cmp9")])
        add_cell(mariadb, cloud["api"], "cell3", mariadb.url(cell3))
        assert ("cell3", "nova-compute", "cmp9") in series(scrape(base), "service_up")
        mariadb.execute("DELETE FROM cell_mappings WHERE name = 'cell3'", database=cloud["api"])
        assert {c for c, _, _ in series(scrape(base), "service_up")} == {"cell0", "cell1", "cell2"}
        assert mariadb.url(cell3) not in shared.reader.engines._engines  # its engine was disposed


def test_api_database_down_falls_back_to_last_cells(mariadb, cloud):
    settings = nova_settings(api_database_connection=cloud["args"][1], database_connection=cloud["args"][3])
    with served(settings, clock=lambda: to_us(T)) as (base, _):
        first = series(scrape(base), "service_up")
        mariadb.execute(f"REVOKE ALL ON `{cloud['api']}`.* FROM 'nova'@'%'")
        mariadb.kill_connections(cloud["api"])
        try:
            text = scrape(base)
        finally:
            mariadb.execute(f"GRANT ALL ON `{cloud['api']}`.* TO 'nova'@'%'")
    assert series(text, "service_up") == first  # last cells and zones known
    assert (
        samples(text)[("service_exporter_database_up", frozenset({("project", "nova"), ("cell", "(api_database)")}))]
        == 0.0
    )
    assert samples(text)[("service_exporter_zones_known", frozenset())] == 0.0


def test_api_database_down_at_first_start_uses_local_cell(mariadb, cloud):
    mariadb.execute(f"REVOKE ALL ON `{cloud['api']}`.* FROM 'nova'@'%'")
    try:
        with freeze_time(T):
            from helpers import run_cli

            code, out, err = run_cli(cloud["args"] + ["list", "--format", "json"])
    finally:
        mariadb.execute(f"GRANT ALL ON `{cloud['api']}`.* TO 'nova'@'%'")
    assert code == 1 and "(api_database)" in err and len(err.strip().splitlines()) == 1
    import json

    records = json.loads(out)
    # [database] connection alone (cell1), with the default zone for every compute.
    assert {(r["cell"], r["host"], r["zone"]) for r in records if r["binary"] == "nova-compute"} == {
        ("", "cmp1", "nova"),
        ("", "cmp2", "nova"),
        ("", "cmp4", "nova"),
    }


def test_duplicate_names_and_null_keys_never_duplicate_series(mariadb, new_db):
    api, a, b = new_db("api"), new_db("services"), new_db("services")
    ua = add_cell(mariadb, api, "same", mariadb.url(a))
    ub = add_cell(mariadb, api, "same", mariadb.url(b))
    add_cell(mariadb, api, None, mariadb.url(b), uuid="11111111-2222-3333-4444-555555555555")
    insert_services(
        mariadb, a, [service("h"), service(None, "nova-compute"), service(None, "nova-compute", topic="compute2")]
    )
    insert_services(mariadb, b, [service("h")])
    settings = nova_settings(api_database_connection=mariadb.url(api))
    with served(settings, clock=lambda: to_us(T)) as (base, _):
        text = scrape(base)  # samples() asserts there is no duplicate series
    cells = {c for c, _, _ in series(text, "service_up")}
    assert cells == {ua, ub, "11111111-2222-3333-4444-555555555555"}
    dup = {dict(k[1])["cell"]: v for k, v in samples(text).items() if k[0] == "service_exporter_duplicate_rows"}
    assert dup[ua] == 1.0 and dup[ub] == 0.0


def test_hung_cell_costs_at_most_the_timeout(mariadb, cloud):
    """A server that accepts connections and never answers (a listening socket nobody reads)."""
    import socket

    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(16)
    port = sink.getsockname()[1]
    add_cell(mariadb, cloud["api"], "hung", f"mysql+pymysql://nova:x@127.0.0.1:{port}/nova")
    settings = nova_settings(
        api_database_connection=cloud["args"][1], database_connection=cloud["args"][3], query_timeout=2
    )
    try:
        with served(settings, clock=lambda: to_us(T)) as (base, _):
            started = time.monotonic()
            text = scrape(base)
            took = time.monotonic() - started
    finally:
        sink.close()
    health = {dict(k[1])["cell"]: v for k, v in samples(text).items() if k[0] == "service_exporter_database_up"}
    assert health["hung"] == 0.0 and health["cell1"] == 1.0
    assert {c for c, _, _ in series(text, "service_up")} == {"cell0", "cell1", "cell2"}
    assert took < 2 * 2 + 1.5
