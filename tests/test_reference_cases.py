"""The reference cases on a real MariaDB with Nova's schema, through `list --format json` and /metrics."""

from __future__ import annotations

import datetime

import pytest
from cloud import T, insert_services, service
from freezegun import freeze_time
from helpers import list_json, nova_settings, samples, scrape, series, served, to_us

S = datetime.timedelta(seconds=1)
CREATED = datetime.datetime(2012, 9, 18, 2, 46, 27)

# nova/tests/unit/api/openstack/compute/test_services.py (now 2012-10-29 13:42:11, defaults 60/10)
API_ROWS = [
    service(
        "host1",
        "nova-scheduler",
        disabled=1,
        last_seen_up=datetime.datetime(2012, 10, 29, 13, 42, 2),
        created_at=CREATED,
    ),
    service(
        "host1", "nova-compute", disabled=1, last_seen_up=datetime.datetime(2012, 10, 29, 13, 42, 5), created_at=CREATED
    ),
    service(
        "host2",
        "nova-scheduler",
        disabled=0,
        last_seen_up=datetime.datetime(2012, 9, 19, 6, 55, 34),
        created_at=CREATED,
    ),
    service(
        "host2", "nova-compute", disabled=1, last_seen_up=datetime.datetime(2012, 9, 18, 8, 3, 38), created_at=CREATED
    ),
    service("host2", "nova-osapi_compute", topic=None, last_seen_up=None),
    service("host2", "nova-metadata", topic=None, last_seen_up=None),
]
API_EXPECTED = {
    ("nova-scheduler", "host1"): ("up", "disabled", "internal"),
    ("nova-compute", "host1"): ("up", "disabled", "nova"),
    ("nova-scheduler", "host2"): ("down", "enabled", "internal"),
    ("nova-compute", "host2"): ("down", "disabled", "nova"),
}


@pytest.fixture
def api_cell(mariadb, new_db):
    db = new_db("services")
    insert_services(mariadb, db, API_ROWS)
    return mariadb.url(db)


def test_list_json_agrees_with_nova_api_unit_tests(api_cell):
    with freeze_time(T):
        records = list_json(["--database-connection", api_cell])
    got = {(r["binary"], r["host"]): (r["state"], r["status"], r["zone"]) for r in records}
    assert got == API_EXPECTED
    first = records[0]
    assert set(first) == {
        "project",
        "cell",
        "binary",
        "host",
        "zone",
        "status",
        "state",
        "forced_down",
        "disabled_reason",
        "updated_at",
        "last_seen_up",
        "heartbeat_age_seconds",
    }
    assert first["cell"] == "" and first["last_seen_up"] == "2012-10-29T13:42:02Z"
    assert first["heartbeat_age_seconds"] == 9.0 and first["forced_down"] is False


def test_metrics_carry_the_same_verdicts(api_cell):
    now = to_us(T)
    with served(nova_settings(database_connection=api_cell), clock=lambda: now) as (base, _):
        text = scrape(base)
    up = series(text, "service_up")
    assert up == {("", b, h): (1.0 if v[0] == "up" else 0.0) for (b, h), v in API_EXPECTED.items()}
    all_samples = samples(text)
    zone_of = {
        dict(k[1])["host"] + dict(k[1])["binary"]: dict(k[1])["zone"] for k in all_samples if k[0] == "service_up"
    }
    assert zone_of["host1nova-compute"] == "nova" and zone_of["host1nova-scheduler"] == "internal"
    assert series(text, "service_disabled")[("", "nova-scheduler", "host2")] == 0.0
    assert series(text, "service_heartbeat_age_seconds")[("", "nova-scheduler", "host1")] == 9.0
    assert (
        series(text, "service_last_seen_timestamp_seconds")[("", "nova-compute", "host1")]
        == to_us(datetime.datetime(2012, 10, 29, 13, 42, 5)) / 1e6
    )
    assert all_samples[("service_down_time_seconds", frozenset({("project", "nova")}))] == 60.0
    assert all_samples[("service_exporter_database_up", frozenset({("project", "nova"), ("cell", "")}))] == 1.0
    info = [dict(k[1]) for k in all_samples if k[0] == "service_info"]
    assert {i["topic"] for i in info} == {"scheduler", "compute"} and all(i["version"] == "66" for i in info)


# nova/tests/unit/servicegroup/test_db_servicegroup.py::test_is_up (service_down_time = 15)
@pytest.mark.parametrize(
    "created,updated,seen,now,state",
    [
        (T, T, T, T, "up"),
        (T, T, T, T + 15 * S, "up"),
        (T, T, T, T + 16 * S, "down"),
        (T, T + 16 * S, T, T + 16 * S, "down"),
        (T + 16 * S, T + 16 * S, None, T + 16 * S, "up"),
    ],
)
def test_servicegroup_cases_on_mariadb(mariadb, new_db, created, updated, seen, now, state):
    db = new_db("services")
    insert_services(mariadb, db, [service("h", created_at=created, updated_at=updated, last_seen_up=seen)])
    with freeze_time(now):
        [record] = list_json(["--database-connection", mariadb.url(db), "--service_down_time", "15"])
    assert record["state"] == state


def test_edges_future_nulls_forced_and_deleted(mariadb, new_db):
    db = new_db("services")
    insert_services(
        mariadb,
        db,
        [
            service("at-threshold", last_seen_up=T - 60 * S),
            service("past-threshold", last_seen_up=T - 61 * S),
            service("future-ok", last_seen_up=T + 60 * S),
            service("future-too-far", last_seen_up=T + 61 * S),
            service("forced", forced_down=1),
            service("null-flags", disabled=None, forced_down=None),
            service("no-timestamps", created_at=None, updated_at=None, last_seen_up=None),
            service("moved-back-an-hour", last_seen_up=T - datetime.timedelta(hours=1)),
            service("soft-deleted", deleted=99),
            service("deleted-null", deleted=None),
        ],
    )
    with freeze_time(T):
        records = {r["host"]: r for r in list_json(["--database-connection", mariadb.url(db)])}
    assert {h: r["state"] for h, r in records.items()} == {
        "at-threshold": "up",
        "past-threshold": "down",
        "future-ok": "up",
        "future-too-far": "down",
        "forced": "down",
        "null-flags": "up",
        "no-timestamps": "down",
        "moved-back-an-hour": "down",
    }
    assert records["future-ok"]["heartbeat_age_seconds"] == -60.0
    assert records["null-flags"]["status"] == "enabled" and records["null-flags"]["forced_down"] is False
    assert records["no-timestamps"]["heartbeat_age_seconds"] is None


def test_threshold_plus_one_microsecond_is_down(mariadb, new_db):
    db = new_db("services")
    insert_services(mariadb, db, [service("h", last_seen_up=T)])
    url = mariadb.url(db)
    with freeze_time(T + 60 * S):
        assert list_json(["--database-connection", url])[0]["state"] == "up"
    with freeze_time(T + 60 * S + datetime.timedelta(microseconds=1)):
        assert list_json(["--database-connection", url])[0]["state"] == "down"


def test_down_time_override_from_report_interval(mariadb, new_db):
    db = new_db("services")
    insert_services(mariadb, db, [service("h", last_seen_up=T - 17 * S), service("g", last_seen_up=T - 18 * S)])
    with served(
        nova_settings(database_connection=mariadb.url(db), service_down_time=5, report_interval=7),
        clock=lambda: to_us(T),
    ) as (base, _):
        text = scrape(base)
    assert samples(text)[("service_down_time_seconds", frozenset({("project", "nova")}))] == 17.0  # int(7 * 2.5)
    assert series(text, "service_up") == {("", "nova-compute", "h"): 1.0, ("", "nova-compute", "g"): 0.0}


@pytest.mark.parametrize(
    "dropped,rule_column",
    [
        (("last_seen_up", "forced_down", "version", "uuid"), "updated_at"),  # Icehouse, Juno, Kilo
        (("uuid",), "last_seen_up"),  # Liberty to Ocata: no uuid yet
    ],
)
def test_old_schemas(mariadb, new_db, dropped, rule_column):
    db = new_db("services")
    for column in dropped:
        mariadb.execute(f"ALTER TABLE services DROP COLUMN `{column}`", database=db)
    rows = [
        service("fresh-update", updated_at=T - 5 * S, last_seen_up=T - 500 * S),
        service("stale-update", updated_at=T - 500 * S, last_seen_up=T - 5 * S),
    ]
    for r in rows:
        for column in dropped:
            r.pop(column)
    insert_services(mariadb, db, rows)
    with freeze_time(T):
        got = {r["host"]: r["state"] for r in list_json(["--database-connection", mariadb.url(db)])}
    if rule_column == "updated_at":
        assert got == {"fresh-update": "up", "stale-update": "down"}
    else:
        assert got == {"fresh-update": "down", "stale-update": "up"}


def test_table_output_like_nova_manage(api_cell):
    from helpers import run_cli

    with freeze_time(T):
        code, out, _ = run_cli(["--database-connection", api_cell, "list", "--binary", "nova-compute"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "Project",
        "Binary",
        "Host",
        "Zone",
        "Status",
        "State",
        "Updated_At",
        "Cell",
        "Heartbeat_Age",
    ]
    assert lines[1].startswith(
        "nova     nova-compute     host1                                nova             disabled   :-)"
    )
    assert "XXX" in lines[2] and len(lines) == 3
