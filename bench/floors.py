"""What reading the same rows costs without the exporter: the C client, the bare drivers."""

from __future__ import annotations

import shutil
import subprocess
from contextlib import ExitStack, closing

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from openstack_service_exporter.sources.nova import tables as nova_db

from .stats import Stats, timed

ALL_COLUMNS = frozenset(c.name for c in nova_db.services.c)  # a current Nova schema


def exporter_sql() -> str:
    """The exporter's own query for a current Nova schema, as MariaDB receives it."""
    query = nova_db.services_query(ALL_COLUMNS)
    return str(query.compile(dialect=mysql.dialect(), compile_kwargs={"literal_binds": True}))


def datetime_sql() -> str:
    """The same rows with the timestamps as DATETIME values (what an ORM model reads)."""
    return exporter_sql().replace("TIMESTAMPDIFF(MICROSECOND, '1970-01-01', services.", "(services.")


def c_client(socket: str, databases: list[str], sql: str, runs: int) -> tuple[Stats, Stats]:
    """`mariadb -e` fetching every cell's rows into /dev/null, one process for all cells; and the
    same process running only SELECT 1 (its start-up cost)."""
    exe = shutil.which("mariadb") or shutil.which("mysql")
    script = " ".join(f"USE `{db}`; {sql};" for db in databases)

    def run(text: str):
        subprocess.run(
            [exe, "--no-defaults", f"--socket={socket}", "-uroot", "--batch", "-e", text],
            stdout=subprocess.DEVNULL,
            check=True,
        )

    return timed(lambda: run(script), runs), timed(lambda: run("SELECT 1"), runs)


def bare_driver(connect, databases: list[str], sql: str, runs: int) -> Stats:
    """A DB-API driver alone: one open connection per cell, execute + fetchall, cells in turn."""
    with ExitStack() as stack:
        conns = [stack.enter_context(closing(connect(db))) for db in databases]

        def fetch():
            for conn in conns:
                cur = conn.cursor()
                cur.execute(sql)
                cur.fetchall()
                cur.close()

        return timed(fetch, runs)


def connectors(port: int, user: str, password: str) -> dict:
    """connect(database) for each driver installed, over TCP like the exporter."""
    out = {}
    import pymysql

    out["PyMySQL"] = lambda db: pymysql.connect(
        host="127.0.0.1", port=port, user=user, password=password, database=db, charset="utf8mb4"
    )
    try:
        import MySQLdb
    except ImportError:
        return out
    out["mysqlclient"] = lambda db: MySQLdb.connect(
        host="127.0.0.1", port=port, user=user, password=password, database=db, charset="utf8mb4"
    )
    return out


def sqlalchemy_pymysql(url_of, databases: list[str], sql: str, runs: int) -> Stats:
    """SQLAlchemy Core over PyMySQL: the same query through a Connection, rows fetched with all()."""
    engines = [sa.create_engine(url_of(db)) for db in databases]
    text = sa.text(sql)

    def fetch():
        for engine in engines:
            with engine.connect() as conn:
                conn.execute(text).all()

    try:
        return timed(fetch, runs)
    finally:
        for engine in engines:
            engine.dispose()
