"""Synthetic Nova clouds in a real MariaDB, with Nova's own DDL: cells, services, AZ aggregates.

Host names, binaries and the mix of states look like a real region; every row is written with
multi-row INSERTs. The same seed gives the same cloud.
"""

from __future__ import annotations

import datetime
import random
import uuid as uuidlib
from contextlib import closing
from dataclasses import dataclass, field

from openstack_service_exporter.sources.nova.tables import CELL0_UUID
from openstack_service_exporter.sources.nova.verdict import API_BINARIES

AZS = 4
NODES_PER_RACK = 40
CONDUCTORS_PER_CELL = 3
BATCH = 1000  # rows per INSERT statement

SERVICE_COLUMNS = (
    "created_at",
    "updated_at",
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

# (state, share of compute services); the rest of the rows are control services, all up.
STATES = (
    ("up", 0.86),
    ("down", 0.04),
    ("stale", 0.03),
    ("disabled", 0.04),
    ("forced_down", 0.01),
    ("never_reported", 0.01),
    ("future", 0.01),
)
REASONS = (
    "maintenance: ticket OPS-4411",
    'AUTO: Connection to libvirt lost: "Broken pipe"',
    "hardware: DIMM B2 failing",
    "draining for kernel upgrade",
)


@dataclass
class Cloud:
    """What was built: database names, the URLs to give the exporter and Nova, and counts."""

    size: int  # services Nova lists (API binaries and deleted rows excluded)
    cells: int
    prefix: str
    api_db: str
    cell_dbs: list[str]  # cell1..cellN (cell0 excluded)
    cell0_db: str
    built_at: datetime.datetime  # the "now" the timestamps were written against (naive UTC)
    rows_written: int = 0
    states: dict[str, int] = field(default_factory=dict)
    zone_hosts: int = 0  # hosts in an AZ aggregate


def compute_host(index: int) -> str:
    rack = index // NODES_PER_RACK
    return f"cmp-az{rack % AZS + 1}-r{rack:03d}-n{index % NODES_PER_RACK + 1:02d}.region1.example.net"


def _pick_state(rng: random.Random) -> str:
    x = rng.random()
    for state, share in STATES:
        if x < share:
            return state
        x -= share
    return "up"


def _service(rng: random.Random, now: datetime.datetime, host: str, binary: str, state: str = "up") -> dict:
    seconds = datetime.timedelta(seconds=1)
    beat = {
        "up": now - rng.randint(0, 9) * seconds,
        "down": now - rng.randint(90, 3600) * seconds,
        "stale": now - rng.randint(1, 90) * 86_400 * seconds,
        "future": now + rng.randint(1, 30) * seconds,
        "never_reported": None,
    }.get(state, now - rng.randint(0, 9) * seconds)
    created = (
        now - rng.randint(0, 30) * seconds
        if state == "never_reported"
        else now - rng.randint(30, 900) * 86_400 * seconds
    )
    disabled = state in ("disabled", "forced_down")
    return {
        "created_at": created,
        "updated_at": beat,
        "host": host,
        "binary": binary,
        "topic": binary[len("nova-") :],
        "report_count": 0 if beat is None else rng.randint(1_000, 5_000_000),
        "disabled": int(disabled),
        "deleted": 0,
        "disabled_reason": rng.choice(REASONS) if disabled else None,
        "last_seen_up": beat,
        "forced_down": int(state == "forced_down"),
        "version": rng.choice((66, 66, 67, 68)),
        "uuid": str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
    }


def insert_rows(conn, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Multi-row INSERTs of BATCH rows each."""
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    head = f"INSERT INTO {table} ({', '.join(f'`{c}`' for c in columns)}) VALUES "
    with conn.cursor() as cur:
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            cur.execute(head + ", ".join([one] * len(batch)), [v for row in batch for v in row])


def _cell_services(
    rng: random.Random, now: datetime.datetime, cell: int, listed: int, first_compute: int, states: dict[str, int]
) -> tuple[list[dict], int]:
    """The rows of one cell: `listed` services Nova shows, plus API services and deleted rows it hides."""
    rows = [
        _service(rng, now, f"ctl-c{cell:02d}-{k}.region1.example.net", "nova-conductor")
        for k in range(1, CONDUCTORS_PER_CELL + 1)
    ]
    if cell == 1:  # the control plane's own services live in the first cell's database
        rows += [_service(rng, now, f"ctl-api-{k}.region1.example.net", "nova-scheduler") for k in (1, 2, 3)]
        rows += [_service(rng, now, f"ctl-api-{k}.region1.example.net", b) for k in (1, 2, 3) for b in API_BINARIES]
    computes = listed - sum(r["binary"] not in API_BINARIES for r in rows)
    for index in range(first_compute, first_compute + computes):
        state = _pick_state(rng)
        states[state] = states.get(state, 0) + 1
        rows.append(_service(rng, now, compute_host(index), "nova-compute", state))
    for index in range(first_compute, first_compute + max(1, computes // 200)):  # decommissioned: soft-deleted
        gone = _service(rng, now, compute_host(index), "nova-compute", "stale")
        gone["deleted"] = -1  # set to the row's id after the insert, as Nova's soft delete does
        rows.append(gone)
    return rows, first_compute + computes


def build(db, size: int, cells: int, password_url, seed: int = 7) -> Cloud:
    """`size` listed services spread over `cells` cells (plus an empty cell0) in databases of `db`
    (a tests/mariadb.py MariaDB); `password_url(dbname)` gives the URL Nova and the exporter use."""
    rng = random.Random(seed * 1_000_003 + size)
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)
    prefix = f"b{size}x{cells}"
    cloud = Cloud(
        size, cells, prefix, f"{prefix}_api", [f"{prefix}_cell{c}" for c in range(1, cells + 1)], f"{prefix}_cell0", now
    )
    for name in [cloud.cell0_db] + cloud.cell_dbs:
        db.create_database(name, "services")
    db.create_database(cloud.api_db, "api")

    per_cell = [size // cells + (1 if c < size % cells else 0) for c in range(cells)]
    next_compute = 0
    computes: list[str] = []
    for c, (name, listed) in enumerate(zip(cloud.cell_dbs, per_cell), start=1):
        first = next_compute
        rows, next_compute = _cell_services(rng, now, c, listed, next_compute, cloud.states)
        computes += [compute_host(i) for i in range(first, next_compute)]
        with closing(db.admin(name)) as conn:
            insert_rows(conn, "services", SERVICE_COLUMNS, [tuple(r[k] for k in SERVICE_COLUMNS) for r in rows])
            with conn.cursor() as cur:
                cur.execute("UPDATE services SET deleted = id WHERE deleted = -1")
        cloud.rows_written += len(rows)

    with closing(db.admin(cloud.api_db)) as conn:
        mappings = [(CELL0_UUID, "cell0", "none:///", password_url(cloud.cell0_db), 0)]
        mappings += [
            (
                str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
                f"cell{c}",
                f"rabbit://nova:secret@mq-c{c:02d}.region1.example.net:5672/",
                password_url(name),
                0,
            )
            for c, name in enumerate(cloud.cell_dbs, start=1)
        ]
        insert_rows(
            conn, "cell_mappings", ("uuid", "name", "transport_url", "database_connection", "disabled"), mappings
        )
        _zones(conn, rng, computes, cloud)
    return cloud


def _zones(conn, rng: random.Random, computes: list[str], cloud: Cloud) -> None:
    """An AZ aggregate per AZ over the even-numbered nodes (half the hosts), and aggregates
    without AZ metadata (which must not give a zone) over some others."""
    names = [f"az{a}" for a in range(1, AZS + 1)] + ["gpu-a100", "ssd-tier"]
    insert_rows(
        conn,
        "aggregates",
        ("uuid", "name"),
        [(str(uuidlib.UUID(int=rng.getrandbits(128), version=4)), n) for n in names],
    )
    with conn.cursor() as cur:
        cur.execute("SELECT name, id FROM aggregates")
        ids = dict(cur.fetchall())
    members = []
    for host in computes:
        node = int(host.split("-n")[1][:2])
        az = host.split("-")[1]
        if node % 2 == 0:
            members.append((host, ids[az]))
            cloud.zone_hosts += 1
        if node % 10 == 1:
            members.append((host, ids["gpu-a100"]))
        if node % 10 == 3:
            members.append((host, ids["ssd-tier"]))
    insert_rows(conn, "aggregate_hosts", ("host", "aggregate_id"), members)
    metadata = [(ids[f"az{a}"], "availability_zone", f"az{a}") for a in range(1, AZS + 1)]
    metadata += [(ids["gpu-a100"], "gpu", "a100"), (ids["ssd-tier"], "disk", "ssd")]
    insert_rows(conn, "aggregate_metadata", ("aggregate_id", "key", "value"), metadata)


def refresh(db, cloud: Cloud) -> None:
    """Moves every timestamp forward by the time since the cloud was built (or last refreshed), so
    that the mix of states is the one built, whenever it is measured."""
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)
    seconds = int((now - cloud.built_at).total_seconds())
    if seconds <= 0:
        return
    for name in cloud.cell_dbs:
        db.execute(
            "UPDATE services SET created_at = created_at + INTERVAL %s SECOND,"
            " updated_at = updated_at + INTERVAL %s SECOND,"
            " last_seen_up = last_seen_up + INTERVAL %s SECOND",
            (seconds, seconds, seconds),
            database=name,
        )
    cloud.built_at = now


def move_cell(src, dst, cloud: Cloud, name: str, url: str) -> None:
    """Moves the cell database `name` from server `src` to server `dst` (rows copied with multi-row
    INSERTs) and points its cell mapping at `url`."""
    dst.create_database(name, "services")
    with closing(src.admin(name)) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM services")
        columns = tuple(d[0] for d in cur.description)
        rows = list(cur.fetchall())
    with closing(dst.admin(name)) as conn:
        insert_rows(conn, "services", columns, rows)
    src.execute(f"DROP DATABASE `{name}`")
    src.execute(
        "UPDATE cell_mappings SET database_connection = %s WHERE name = %s",
        (url, f"cell{cloud.cell_dbs.index(name) + 1}"),
        database=cloud.api_db,
    )
