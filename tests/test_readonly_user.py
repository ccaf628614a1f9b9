"""deploy/sql/readonly-user.sql on the real MariaDB: the exporter works fully as that user, and the user
can read nothing else and write nothing at all."""

from __future__ import annotations

import datetime
import pathlib
import re
from contextlib import closing
from dataclasses import dataclass

import pymysql
import pytest
from cloud import add_cell, add_zone, insert_services, service
from helpers import free_port, list_json, samples, scrape, series, start_exporter, stop_exporter
from mariadb import split_statements

from openstack_service_exporter.sources.nova.tables import CELL0_UUID

SQL = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "sql" / "readonly-user.sql"
PASSWORD = "r3ad-0nly-Pa55word-for-tests"
TABLE_DENIED, COLUMN_DENIED = 1142, 1143  # MariaDB's ER_TABLEACCESS_DENIED_ERROR, ER_COLUMNACCESS_DENIED_ERROR


@dataclass(frozen=True)
class Cloud:
    api: str
    cell0: str
    cell1: str
    user: str
    args: list[str]  # the exporter's global options, every URL as the read-only user


def apply_grant(mariadb, names: dict[str, str], user: str, path: pathlib.Path = SQL) -> None:
    """The committed file with its usual names replaced by this test's, as the docs tell an operator to."""
    sql = path.read_text().replace("CHANGE_ME", PASSWORD).replace("'nova_exporter'", f"'{user}'")
    sql = re.sub(r"`(nova_api|nova_cell0|nova|cinder|neutron|ironic)`", lambda m: f"`{names[m.group(1)]}`", sql)
    with closing(mariadb.admin()) as conn, conn.cursor() as cur:
        for statement in split_statements(sql):
            cur.execute(statement)


@pytest.fixture
def cloud(mariadb, new_db) -> Cloud:
    api, cell0, cell1 = new_db("api"), new_db("services"), new_db("services")
    user = f"ro_{api}"
    apply_grant(mariadb, {"nova_api": api, "nova_cell0": cell0, "nova": cell1}, user)
    # Tables that exist beside Nova's in real databases and must stay out of reach.
    mariadb.execute("CREATE TABLE instances (id INT PRIMARY KEY, hostname VARCHAR(255))", database=cell1)
    mariadb.execute("CREATE TABLE build_requests (id INT PRIMARY KEY, instance TEXT)", database=api)

    now = datetime.datetime.utcnow().replace(microsecond=0)
    alive = dict(created_at=now, updated_at=now, last_seen_up=now)
    insert_services(
        mariadb, cell0, [service("ctl-1", "nova-scheduler", **alive), service("ctl-1", "nova-conductor", **alive)]
    )
    insert_services(
        mariadb,
        cell1,
        [
            service("ctl-1", "nova-conductor", **alive),
            service("cmp-1", "nova-compute", **alive),
            service("cmp-2", "nova-compute", **alive),
        ],
    )
    add_zone(mariadb, api, "rack-1", ["cmp-1"], "az1")
    # cell0 by a literal URL, cell1 by a template filled from the exporter's own [database] connection.
    add_cell(mariadb, api, "cell0", mariadb.url(cell0, user, PASSWORD), uuid=CELL0_UUID)
    add_cell(mariadb, api, "cell1", "{scheme}://{username}:{password}@{hostname}:{port}/" + cell1 + "?{query}")
    args = [
        "--api_database-connection",
        mariadb.url(api, user, PASSWORD),
        "--database-connection",
        mariadb.url(cell1, user, PASSWORD),
    ]
    return Cloud(api, cell0, cell1, user, args)


EXPECTED = {
    ("cell0", "nova-scheduler", "ctl-1", "internal"),
    ("cell0", "nova-conductor", "ctl-1", "internal"),
    ("cell1", "nova-conductor", "ctl-1", "internal"),
    ("cell1", "nova-compute", "cmp-1", "az1"),
    ("cell1", "nova-compute", "cmp-2", "nova"),
}


def test_list_sees_every_service_of_every_cell_with_its_zone(cloud):
    rows = list_json(cloud.args)
    assert {(r["cell"], r["binary"], r["host"], r["zone"]) for r in rows} == EXPECTED
    assert {r["state"] for r in rows} == {"up"}


def test_metrics_as_the_readonly_user_are_complete(cloud):
    port = free_port()
    proc = start_exporter(cloud.args + ["--exporter-listen_address", f"127.0.0.1:{port}", "serve"], port)
    try:
        text = scrape(f"http://127.0.0.1:{port}")
    finally:
        code, _, err = stop_exporter(proc)
    assert code == 0, err
    health = {
        dict(labels)["cell"]: value
        for (name, labels), value in samples(text).items()
        if name == "service_exporter_database_up"
    }
    assert health == {"(api_database)": 1.0, "cell0": 1.0, "cell1": 1.0}
    assert samples(text)[("service_exporter_zones_known", frozenset())] == 1.0
    assert series(text, "service_up") == {(cell, binary, host): 1.0 for cell, binary, host, _ in EXPECTED}
    zones = {(dict(labels)["host"], dict(labels)["zone"]) for (name, labels) in samples(text) if name == "service_up"}
    assert zones == {(host, zone) for _, _, host, zone in EXPECTED}


def denied(mariadb, cloud, database: str, sql: str) -> int:
    """The MariaDB error number `sql` gets as the read-only user (0 if it succeeds)."""
    conn = pymysql.connect(
        host="127.0.0.1", port=mariadb.port, user=cloud.user, password=PASSWORD, database=database, autocommit=True
    )
    with closing(conn), conn.cursor() as cur:
        try:
            cur.execute(sql)
        except pymysql.err.MySQLError as exc:
            return exc.args[0]
    return 0


def test_the_user_reads_exactly_what_the_exporter_needs(mariadb, cloud):
    # What the exporter reads: allowed (the two joins and the column list it uses).
    assert denied(mariadb, cloud, cloud.cell1, "SELECT * FROM services LIMIT 0") == 0
    assert (
        denied(mariadb, cloud, cloud.api, "SELECT id, uuid, name, database_connection, disabled FROM cell_mappings")
        == 0
    )
    assert (
        denied(
            mariadb,
            cloud,
            cloud.api,
            "SELECT h.host, m.value FROM aggregate_hosts h "
            "JOIN aggregates a ON a.id = h.aggregate_id "
            "JOIN aggregate_metadata m ON m.aggregate_id = a.id",
        )
        == 0
    )
    # Anything else: refused.
    assert denied(mariadb, cloud, cloud.cell1, "SELECT * FROM instances") == TABLE_DENIED
    assert denied(mariadb, cloud, cloud.api, "SELECT * FROM build_requests") == TABLE_DENIED
    assert denied(mariadb, cloud, cloud.api, "SELECT transport_url FROM cell_mappings") == COLUMN_DENIED
    assert denied(mariadb, cloud, cloud.api, "SELECT * FROM cell_mappings") == COLUMN_DENIED
    assert denied(mariadb, cloud, cloud.cell0, "SELECT user FROM mysql.user") == TABLE_DENIED


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE services SET disabled = 1",
        "DELETE FROM services",
        "INSERT INTO services (host) VALUES ('intruder')",
        "CREATE TABLE intruder (id INT)",
        "DROP TABLE services",
    ],
)
def test_the_user_writes_nothing(mariadb, cloud, statement):
    assert denied(mariadb, cloud, cloud.cell1, statement) == TABLE_DENIED
    assert mariadb.execute("SELECT COUNT(*) FROM services", database=cloud.cell1) == [(3,)]


def test_cinder_as_the_readonly_user(mariadb, new_db, tmp_path):
    """readonly-user-cinder.sql: Cinder's services table and nothing else, enough for the exporter."""
    from test_cinder import insert
    from test_cinder import service as cinder_service

    database = new_db("cinder")
    user = f"ro_{database}"
    apply_grant(mariadb, {"cinder": database}, user, SQL.with_name("readonly-user-cinder.sql"))
    mariadb.execute("CREATE TABLE volumes (id INT PRIMARY KEY)", database=database)
    now = datetime.datetime.utcnow().replace(microsecond=0)
    insert(mariadb, database, [cinder_service("st@lvm", updated_at=now)])
    conf = tmp_path / "cinder.conf"
    conf.write_text(f"[database]\nconnection = {mariadb.url(database, user, PASSWORD)}\n")
    rows = list_json(["--config-file", "/dev/null", "--cinder-config_file", str(conf)])
    assert [(r["project"], r["host"], r["state"]) for r in rows] == [("cinder", "st@lvm", "up")]
    conn = pymysql.connect(
        host="127.0.0.1", port=mariadb.port, user=user, password=PASSWORD, database=database, autocommit=True
    )
    with closing(conn), conn.cursor() as cur:
        for statement in ("SELECT * FROM volumes", "UPDATE services SET disabled = 1"):
            with pytest.raises(pymysql.err.MySQLError) as denied_:
                cur.execute(statement)
            assert denied_.value.args[0] == TABLE_DENIED


@pytest.mark.parametrize(
    "project, table, writes",
    [("neutron", "agents", "DELETE FROM agents"), ("ironic", "conductors", "DELETE FROM conductors")],
)
def test_each_projects_grant_is_its_table_only(mariadb, new_db, project, table, writes):
    """readonly-user-<project>.sql: SELECT on that project's table, nothing else."""
    database = new_db(project)
    user = f"ro_{database}"
    apply_grant(mariadb, {project: database}, user, SQL.with_name(f"readonly-user-{project}.sql"))
    mariadb.execute("CREATE TABLE other (id INT PRIMARY KEY)", database=database)
    conn = pymysql.connect(
        host="127.0.0.1", port=mariadb.port, user=user, password=PASSWORD, database=database, autocommit=True
    )
    with closing(conn), conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {table} LIMIT 0")  # what the exporter runs first: allowed
        for statement in ("SELECT * FROM other", writes):
            with pytest.raises(pymysql.err.MySQLError) as refused:
                cur.execute(statement)
            assert refused.value.args[0] == TABLE_DENIED
