"""Builders for Nova rows in a real database: services, cell mappings, AZ aggregates."""

from __future__ import annotations

import datetime
import itertools
import uuid as uuidlib

SERVICE_COLUMNS = (
    "created_at",
    "updated_at",
    "deleted_at",
    "host",
    "binary",
    "topic",
    "report_count",
    "disabled",
    "deleted",
    "disabled_reason",
    "last_seen_up",
    "forced_down",
    "version",
    "uuid",
)
T = datetime.datetime(2012, 10, 29, 13, 42, 11)  # Nova's own API unit tests' instant
_counter = itertools.count(1)


def service(host="host1", binary="nova-compute", topic=..., **extra) -> dict:
    """A live-looking row; every column can be overridden (None for NULL). The topic defaults to the
    binary without 'nova-', as Nova names them."""
    if topic is ...:
        topic = binary[len("nova-") :] if binary and binary.startswith("nova-") else None
    row = {
        "created_at": T - datetime.timedelta(days=1),
        "updated_at": T,
        "deleted_at": None,
        "host": host,
        "binary": binary,
        "topic": topic,
        "report_count": next(_counter),
        "disabled": 0,
        "deleted": 0,
        "disabled_reason": None,
        "last_seen_up": T,
        "forced_down": 0,
        "version": 66,
        "uuid": str(uuidlib.uuid4()),
    }
    row.update(extra)
    return row


def insert_services(db, database: str, rows: list[dict]) -> None:
    if not rows:
        return
    columns = [c for c in SERVICE_COLUMNS if c in rows[0]]
    for row in rows:
        assert set(row) <= set(SERVICE_COLUMNS), set(row) - set(SERVICE_COLUMNS)
    sql = "INSERT INTO services ({}) VALUES ({})".format(
        ", ".join(f"`{c}`" for c in columns), ", ".join(["%s"] * len(columns))
    )
    with db.admin(database) as conn, conn.cursor() as cur:
        cur.executemany(sql, [tuple(r.get(c) for c in columns) for r in rows])


def add_cell(db, api_database: str, name, connection: str, uuid: str | None = None, disabled: bool = False) -> str:
    uuid = uuid or str(uuidlib.uuid4())
    db.execute(
        "INSERT INTO cell_mappings (uuid, name, transport_url, database_connection, disabled, created_at) "
        "VALUES (%s, %s, 'rabbit://', %s, %s, NOW())",
        (uuid, name, connection, int(disabled)),
        database=api_database,
    )
    return uuid


def add_zone(db, api_database: str, aggregate: str, hosts: list[str], zone: str | None) -> None:
    """An aggregate holding `hosts`, with availability_zone metadata `zone` (None: no AZ metadata)."""
    db.execute(
        "INSERT INTO aggregates (uuid, name) VALUES (%s, %s)", (str(uuidlib.uuid4()), aggregate), database=api_database
    )
    agg_id = db.execute("SELECT id FROM aggregates WHERE name = %s", (aggregate,), database=api_database)[0][0]
    for host in hosts:
        db.execute(
            "INSERT INTO aggregate_hosts (host, aggregate_id) VALUES (%s, %s)", (host, agg_id), database=api_database
        )
    if zone is not None:
        db.execute(
            "INSERT INTO aggregate_metadata (aggregate_id, `key`, value) VALUES (%s, 'availability_zone', %s)",
            (agg_id, zone),
            database=api_database,
        )
    db.execute(
        "INSERT INTO aggregate_metadata (aggregate_id, `key`, value) VALUES (%s, 'ssd', 'true')",
        (agg_id,),
        database=api_database,
    )
