"""An Ironic database on the test MariaDB whose schema is built by Ironic's own `ironic-dbsync
upgrade` (from the oracle venv); clouds are then written into its `conductors` table (`load`), and
an ironic.conf is written per cloud (`write_conf`) that both Ironic and the exporter read.
"""

from __future__ import annotations

import os
import pathlib
import time
from contextlib import closing

import oracles

DATABASE = "conf_ironic"
# Columns of `conductors` as `ironic-dbsync upgrade` makes them (ironic/db/sqlalchemy/models.py,
# Conductor and IronicBase): a cloud's rows give every one of them, id included.
COLUMNS = ("id", "hostname", "drivers", "online", "conductor_group", "created_at", "updated_at", "version")


def conf_text(connection: str, heartbeat_timeout: int | None) -> str:
    """An ironic.conf as an ironic-api without Keystone reads it. heartbeat_timeout None is not
    written, so Ironic's default applies (ironic/conf/conductor.py)."""
    conductor = "" if heartbeat_timeout is None else f"[conductor]\nheartbeat_timeout = {heartbeat_timeout}\n"
    # json-rpc: ironic-api refuses rpc_transport = none (ironic/common/service.py, ensure_rpc_transport);
    # nothing is ever sent over it here.
    return (
        f"[DEFAULT]\nauth_strategy = noauth\nrpc_transport = json-rpc\ntransport_url = fake://\n"
        f"[database]\nconnection = {connection}\n{conductor}"
    )


class IronicDeployment:
    def __init__(self, mariadb, oracle_python: pathlib.Path, workdir: pathlib.Path):
        self.mariadb = mariadb
        self.dbsync = str(oracle_python.parent / "ironic-dbsync")
        self.workdir = workdir
        self.schema_seconds: float | None = None

    @property
    def url(self) -> str:
        """[database] connection of every cloud's ironic.conf."""
        return self.mariadb.url(DATABASE)

    def create(self) -> None:
        """A fresh database whose schema is Ironic's: every migration of `ironic-dbsync upgrade`."""
        self.mariadb.empty_database(DATABASE)
        conf = self.write_conf(self.workdir / "dbsync.conf", None)
        env = {k: v for k, v in os.environ.items() if not k.startswith("IRONIC_CONFIG_")}
        started = time.monotonic()
        oracles.run_tool([self.dbsync, "--config-file", str(conf), "upgrade"], timeout=600, env=env)
        self.schema_seconds = time.monotonic() - started

    def write_conf(self, path: pathlib.Path, heartbeat_timeout: int | None) -> pathlib.Path:
        path.write_text(conf_text(self.url, heartbeat_timeout))
        return path

    def load(self, rows: list[dict]) -> None:
        """Replace every conductor by these rows (plain SQL, as an operator's database holds them).
        conductor_hardware_interfaces refers to conductors, so it is emptied first; the API never
        reads it."""
        with closing(self.mariadb.admin(DATABASE)) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM conductor_hardware_interfaces")
            cur.execute("DELETE FROM conductors")
            if rows:
                cur.executemany(
                    "INSERT INTO conductors ({}) VALUES ({})".format(
                        ", ".join(f"`{c}`" for c in COLUMNS), ", ".join(["%s"] * len(COLUMNS))
                    ),
                    [tuple(row[c] for c in COLUMNS) for row in rows],
                )
