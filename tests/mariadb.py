"""A private MariaDB server for the test session: its own data directory, socket and loopback port.

It never touches a system MariaDB. If the server binary is missing, it installs Debian's
mariadb-server when it can (root with apt-get), and fails loudly otherwise.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
from contextlib import closing

import pymysql
import pytest

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
USER = "nova"
PASSWORD = "s3cr3t-Pa55word-for-tests"  # a distinctive string: the leak tests grep every output for it


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def terminate(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a child we started: SIGTERM, then SIGKILL if it has not exited within `timeout`."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _binary(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)


def ensure_installed() -> None:
    if _binary("mariadbd") and _binary("mariadb-install-db"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "mariadb-server"], check=True, env=env)
    if not (_binary("mariadbd") and _binary("mariadb-install-db")):
        pytest.fail(
            "MariaDB server (mariadbd) is not installed and could not be installed: apt-get install mariadb-server",
            pytrace=False,
        )


def split_statements(sql: str) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


class ChildServer:
    """A server process the tests started (`self.proc`): stopped, or hung and resumed, by its pid."""

    proc: subprocess.Popen | None = None

    def stop(self) -> None:
        if self.proc:
            self.resume()
            terminate(self.proc)
        self.proc = None

    def pause(self) -> None:
        """The server keeps its sockets open and accepts, but answers nothing: a hung server."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)


class MariaDB(ChildServer):
    def __init__(self, base: pathlib.Path):
        ensure_installed()
        self.base = base
        self.datadir = base / "data"
        self.socket = str(base / "mysqld.sock")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def install(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        args = [
            _binary("mariadb-install-db"),
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--no-defaults",
        ]
        if os.geteuid() == 0:
            args.append("--user=root")
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        args = [
            _binary("mariadbd"),
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={self.base / 'mysqld.pid'}",
            f"--log-error={self.base / 'error.log'}",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=128M",
            "--innodb-flush-log-at-trx-commit=0",
            "--skip-name-resolve",
            "--max-connections=500",
            "--character-set-server=utf8mb4",
        ]
        if os.geteuid() == 0:
            args.append("--user=root")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mariadbd exited: " + (self.base / "error.log").read_text()[-2000:])
            try:
                self.admin().close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.1)
        raise RuntimeError("mariadbd did not start within 60 s")

    def restart(self) -> None:
        self.stop()
        self.start()

    # -- access ------------------------------------------------------------------------------

    def admin(self, database: str | None = None) -> pymysql.Connection:
        return pymysql.connect(
            unix_socket=self.socket, user="root", database=database, autocommit=True, charset="utf8mb4"
        )

    def execute(self, sql: str, params=None, database: str | None = None) -> list[tuple]:
        with closing(self.admin(database)) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def insert(self, database: str, table: str, rows: list[dict]) -> None:
        """Rows given as dicts with the same keys, the table's column names."""
        columns = list(rows[0])
        sql = "INSERT INTO `{}` ({}) VALUES ({})".format(
            table, ", ".join(f"`{c}`" for c in columns), ", ".join(["%s"] * len(columns))
        )
        with closing(self.admin(database)) as conn, conn.cursor() as cur:
            cur.executemany(sql, [tuple(r[c] for c in columns) for r in rows])

    def kill_connections(self, database: str, user: str = USER) -> None:
        """End the user's open connections to a database (privilege changes reach pooled connections only
        when they reconnect)."""
        for (pid,) in self.execute(
            "SELECT id FROM information_schema.processlist WHERE user = %s AND db = %s", (user, database)
        ):
            self.execute(f"KILL {int(pid)}")

    def url(self, database: str, user: str = USER, password: str = PASSWORD, driver: str = "pymysql") -> str:
        return f"mysql+{driver}://{user}:{password}@127.0.0.1:{self.port}/{database}?charset=utf8mb4"

    def create_user(self, user: str = USER, password: str = PASSWORD) -> None:
        self.execute(f"CREATE USER IF NOT EXISTS '{user}'@'%%' IDENTIFIED BY %s", (password,))

    def empty_database(self, name: str, grant_to: str = USER) -> None:
        """A fresh database with no table, all of it granted to `grant_to` (for a project's own tool to fill)."""
        self.execute(f"DROP DATABASE IF EXISTS `{name}`")
        self.execute(f"CREATE DATABASE `{name}`")
        self.execute(f"GRANT ALL ON `{name}`.* TO '{grant_to}'@'%'")

    def create_database(self, name: str, schema: str, grant_to: str | None = USER) -> None:
        """A fresh database with a project's DDL: schema 'services' (a Nova cell), 'api' (Nova's API database),
        'cinder', 'neutron' or 'ironic' (tests/fixtures/<schema>_schema.sql)."""
        self.execute(f"DROP DATABASE IF EXISTS `{name}`")
        self.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb3")
        ddl = (FIXTURES / f"{schema}_schema.sql").read_text()
        with closing(self.admin(name)) as conn, conn.cursor() as cur:
            for statement in split_statements(ddl):
                cur.execute(statement)
        if grant_to:
            self.execute(f"GRANT ALL ON `{name}`.* TO '{grant_to}'@'%'")
