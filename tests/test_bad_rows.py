"""Rows edited by hand: NULL keys, impossible dates, odd text. Nothing crashes, nothing is lost, escaping holds."""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from cloud import T, insert_services, service
from freezegun import freeze_time
from helpers import CellHealth, list_json, nova_settings, nova_snapshot, samples, scrape, served, to_us
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from openstack_service_exporter.collector import families
from openstack_service_exporter.config import Settings
from openstack_service_exporter.exposition import render
from openstack_service_exporter.sources.nova.tables import services_query
from openstack_service_exporter.sources.nova.verdict import ServiceRow


def test_null_keys_zero_and_far_dates_and_odd_text(mariadb, new_db):
    db = new_db("services")
    mariadb.execute("SET GLOBAL sql_mode = ''")  # allow what a careless hand-edit can store
    try:
        nasty = 'quote " backslash \\ newline \n tab \t unicode ✓ end'
        insert_services(
            mariadb,
            db,
            [
                service(None, "nova-compute", topic="compute"),
                service("nobinary", None, topic=None),
                service("notopic", "nova-compute", topic=None),
                service("zero-date", last_seen_up="0000-00-00 00:00:00", created_at="0000-00-00 00:00:00"),
                service("zero-seen", last_seen_up="0000-00-00 00:00:00"),
                service("year-9999", last_seen_up=datetime.datetime(9999, 12, 31, 23, 59, 59)),
                service("long-reason", disabled=1, disabled_reason="x" * 255),
                service(nasty, "nova-conductor", disabled=1, disabled_reason=nasty),
            ],
        )
    finally:
        mariadb.execute("SET GLOBAL sql_mode = DEFAULT")
    url = mariadb.url(db)
    with freeze_time(T):
        records = {r["host"]: r for r in list_json(["--database-connection", url])}
    assert records[None]["zone"] == "nova" and records["nobinary"]["binary"] is None
    assert records["notopic"]["zone"] == "internal"
    assert records["zero-date"]["state"] == "down" and records["zero-date"]["last_seen_up"] is None
    # A zero last_seen_up is no heartbeat: created_at (a day ago) is what is left, so down.
    assert records["zero-seen"]["state"] == "down" and records["zero-seen"]["heartbeat_age_seconds"] == 86400.0
    assert records["year-9999"]["state"] == "down" and records["year-9999"]["heartbeat_age_seconds"] < 0
    assert records[nasty]["disabled_reason"] == nasty
    with served(nova_settings(database_connection=url), clock=lambda: to_us(T)) as (base, _):
        text = scrape(base)
    got = samples(text)  # parses, and asserts no duplicate series
    hosts = {dict(k[1])["host"] for k in got if k[0] == "service_up"}
    assert hosts == {"", "nobinary", "notopic", "zero-date", "zero-seen", "year-9999", "long-reason", nasty}
    info = {dict(k[1])["host"]: dict(k[1]) for k in got if k[0] == "service_info"}
    assert info[nasty]["disabled_reason"] == nasty and info["long-reason"]["disabled_reason"] == "x" * 255


def test_services_query_is_one_select_of_needed_columns():
    columns = frozenset(
        {
            "id",
            "host",
            "binary",
            "topic",
            "report_count",
            "disabled",
            "disabled_reason",
            "deleted",
            "created_at",
            "updated_at",
            "deleted_at",
            "last_seen_up",
            "forced_down",
            "version",
            "uuid",
        }
    )
    sql = str(
        services_query(columns).compile(dialect=sa.dialects.mysql.dialect(), compile_kwargs={"literal_binds": True})
    )
    assert " ".join(sql.split()) == (
        "SELECT services.id, services.host, services.`binary`, services.topic, services.report_count, "
        "services.disabled, services.disabled_reason, services.forced_down, services.version, services.uuid, "
        "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', services.created_at) AS created_at, "
        "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', services.updated_at) AS updated_at, "
        "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', services.last_seen_up) AS last_seen_up "
        "FROM services WHERE services.deleted = 0 AND (services.`binary` IS NULL "
        "OR (services.`binary` NOT IN ('nova-osapi_compute', 'nova-metadata'))) ORDER BY services.id"
    )


text_values = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hosts=st.lists(text_values, min_size=1, max_size=5, unique=True),
    reason=st.one_of(st.none(), text_values),
    cell=text_values,
    seen=st.one_of(st.none(), st.integers(-(10**15), 10**16)),
)
def test_exposition_round_trip(hosts, reason, cell, seen):
    """Whatever the text in the rows, the exposition parses back to exactly the labels and values put in."""
    rows = [
        ServiceRow(cell, i, h, "nova-compute", "compute", i, True, reason, False, 1, None, 0, None, seen)
        for i, h in enumerate(hosts)
    ]
    snap = nova_snapshot(to_us(T), rows, [CellHealth(cell, True, 0.01)])
    text = render(families(snap, Settings(), to_us(T), "pymysql")).decode()
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    up = {s.labels["host"]: s for s in parsed["service_up"].samples}
    assert set(up) == set(hosts) and all(s.labels["cell"] == cell for s in up.values())
    info = {s.labels["host"]: s.labels["disabled_reason"] for s in parsed["service_info"].samples}
    assert info == {h: reason or "" for h in hosts}
    ages = {s.labels["host"]: s.value for s in parsed["service_heartbeat_age_seconds"].samples}
    beat = seen if seen is not None else 0
    assert all(abs(ages[h] - (to_us(T) - beat) / 1e6) <= 1e-6 * max(1.0, abs(ages[h])) for h in hosts)


def test_non_utf8_bytes_written_by_hand(mariadb, new_db):
    """Bytes that are not UTF-8, sent through a latin1 connection with strict mode off: MariaDB stores
    what it can convert (invalid sequences become '?'), and the exporter reads the row like any other."""
    import pymysql

    db = new_db("services")
    insert_services(mariadb, db, [service("h1"), service("h2")])
    conn = pymysql.connect(unix_socket=mariadb.socket, user="root", database=db, charset="latin1", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = ''")
            cur.execute(
                "UPDATE services SET disabled = 1, disabled_reason = _binary X'C3A9FF20626164FE' WHERE host = 'h1'"
            )
    finally:
        conn.close()
    with freeze_time(T):
        records = {r["host"]: r for r in list_json(["--database-connection", mariadb.url(db)])}
    assert records["h1"]["disabled_reason"] == "é? bad?" and records["h1"]["status"] == "disabled"
    assert records["h2"]["state"] == "up"
