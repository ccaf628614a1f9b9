"""A Nova deployment's databases, made by Nova's own tooling (nova-manage from the Nova venv) on the
test MariaDB: an API database, cell0, cell1 and cell2 (cell2 mapped by a templated URL and disabled).

Clouds are then written into it row by row (`load`), and a nova.conf is written per cloud (`write_conf`)
that both Nova and the exporter read.
"""

from __future__ import annotations

import os
import pathlib
from contextlib import closing
from dataclasses import dataclass

import oracles
import random_clouds

from openstack_service_exporter.sources.nova.tables import CELL0_UUID

# Nova formats this from [database] connection (nova/objects/cell_mapping.py, _format_url); the exporter
# must do the same to reach cell2 at all.
CELL2_TEMPLATE = "{scheme}://{username}:{password}@{hostname}:{port}/conf_cell2?{query}"


@dataclass(frozen=True)
class Cell:
    name: str
    database: str
    uuid: str


class NovaDeployment:
    def __init__(self, mariadb, nova_python: pathlib.Path, workdir: pathlib.Path):
        self.mariadb = mariadb
        self.nova_manage = str(nova_python.parent / "nova-manage")
        self.workdir = workdir
        self.api_database = "conf_api"
        self.cells: list[Cell] = []

    @property
    def api_url(self) -> str:
        return self.mariadb.url(self.api_database)

    @property
    def local_url(self) -> str:
        """[database] connection of every nova.conf: cell1's, the base of cell2's template."""
        return self.mariadb.url("conf_cell1")

    # -- made by nova-manage ------------------------------------------------------------------------

    def _manage(self, conf: pathlib.Path, *args: str) -> str:
        env = dict(os.environ, OS_NOVA_DISABLE_EVENTLET_PATCHING="true")  # threading mode: no eventlet noise
        return oracles.run_tool([self.nova_manage, "--config-file", str(conf), *args], timeout=300, env=env)

    def _setup_conf(self, local: str) -> pathlib.Path:
        path = self.workdir / f"setup-{local}.conf"
        path.write_text(
            f"[DEFAULT]\ntransport_url = fake://\n[api_database]\nconnection = {self.api_url}\n"
            f"[database]\nconnection = {self.mariadb.url(local)}\n"
        )
        return path

    def create(self) -> None:
        for db in (self.api_database, "conf_cell0", "conf_cell1", "conf_cell2"):
            self.mariadb.empty_database(db)
        conf1, conf2 = self._setup_conf("conf_cell1"), self._setup_conf("conf_cell2")
        self._manage(conf1, "api_db", "sync")
        self._manage(conf1, "cell_v2", "map_cell0", "--database_connection", self.mariadb.url("conf_cell0"))
        # Every cell needs its own transport URL: nova-manage refuses a cell whose URL another has.
        uuid1 = (
            self._manage(
                conf1,
                "cell_v2",
                "create_cell",
                "--name",
                "cell1",
                "--verbose",
                "--database_connection",
                self.mariadb.url("conf_cell1"),
                "--transport-url",
                "fake://",
            )
            .strip()
            .splitlines()[-1]
        )
        uuid2 = (
            self._manage(
                conf1,
                "cell_v2",
                "create_cell",
                "--name",
                "cell2",
                "--verbose",
                "--disabled",
                "--database_connection",
                CELL2_TEMPLATE,
                "--transport-url",
                "fake://cell2",
            )
            .strip()
            .splitlines()[-1]
        )
        self._manage(conf1, "db", "sync")  # cell1, and cell0 through its mapping
        self._manage(conf2, "db", "sync", "--local_cell")
        self.cells = [
            Cell("cell0", "conf_cell0", CELL0_UUID),
            Cell("cell1", "conf_cell1", uuid1),
            Cell("cell2", "conf_cell2", uuid2),
        ]

    # -- one cloud ----------------------------------------------------------------------------------

    def write_conf(self, path: pathlib.Path, options: random_clouds.Options) -> pathlib.Path:
        default = "".join(f"{name} = {value}\n" for name, value in options.written().items())
        path.write_text(
            f"[DEFAULT]\ntransport_url = fake://\n{default}"
            f"[api_database]\nconnection = {self.api_url}\n"
            f"[database]\nconnection = {self.local_url}\n"
        )
        return path

    def load(self, cloud: random_clouds.Cloud) -> None:
        """Replace every service row and aggregate by the cloud's (plain SQL, as an operator's
        database would hold them, constraints of Nova's schema included)."""
        for cell in self.cells:
            rows = cloud.services.get(cell.name, [])
            with closing(self.mariadb.admin(cell.database)) as conn, conn.cursor() as cur:
                cur.execute("DELETE FROM services")
                if rows:
                    # Explicit ids: a soft-deleted twin carries deleted = its own id, as Nova writes it.
                    columns = list(rows[0])
                    cur.executemany(
                        "INSERT INTO services ({}) VALUES ({})".format(
                            ", ".join(f"`{c}`" for c in columns), ", ".join(["%s"] * len(columns))
                        ),
                        [tuple(row[c] for c in columns) for row in rows],
                    )
        with closing(self.mariadb.admin(self.api_database)) as conn, conn.cursor() as cur:
            for table in ("aggregate_metadata", "aggregate_hosts", "aggregates"):
                cur.execute(f"DELETE FROM {table}")
            for number, aggregate in enumerate(cloud.aggregates, start=1):
                cur.execute(
                    "INSERT INTO aggregates (id, uuid, name) VALUES (%s, %s, %s)",
                    (number, f"00000000-0000-4000-8000-{number:012d}", aggregate.name),
                )
                cur.executemany(
                    "INSERT INTO aggregate_hosts (host, aggregate_id) VALUES (%s, %s)",
                    [(host, number) for host in aggregate.hosts],
                )
                metadata = [("ssd", "true")] + (
                    [("availability_zone", aggregate.zone)] if aggregate.zone is not None else []
                )
                cur.executemany(
                    "INSERT INTO aggregate_metadata (aggregate_id, `key`, value) VALUES (%s, %s, %s)",
                    [(number, key, value) for key, value in metadata],
                )
