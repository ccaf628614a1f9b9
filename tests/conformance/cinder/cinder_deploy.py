"""A Cinder database made by Cinder's own tooling (`cinder-manage db sync` of the oracle venv) on the
test MariaDB. Clouds are then written into its `services` table (`load`), and a cinder.conf is
written per cloud (`write_conf`) that both Cinder and the exporter read.
"""

from __future__ import annotations

import pathlib
from contextlib import closing

import oracles
from cinder_random import Cloud

DATABASE = "conf_cinder"


class CinderDeployment:
    def __init__(self, mariadb, oracle_python: pathlib.Path, workdir: pathlib.Path):
        self.mariadb = mariadb
        self.cinder_manage = str(oracle_python.parent / "cinder-manage")
        self.workdir = workdir

    @property
    def url(self) -> str:
        return self.mariadb.url(DATABASE)

    def create(self) -> None:
        self.mariadb.empty_database(DATABASE)
        conf = self.workdir / "setup-cinder.conf"
        conf.write_text(f"[database]\nconnection = {self.url}\n")
        self.manage(conf, "db", "sync")

    def manage(self, conf: pathlib.Path, *args: str) -> str:
        """cinder-manage's output; fails with it when cinder-manage does."""
        return oracles.run_tool([self.cinder_manage, "--config-file", str(conf), *args], timeout=600)

    def columns(self) -> list[str]:
        """The columns of `services` as cinder-manage made them."""
        rows = self.mariadb.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'services' ORDER BY ordinal_position",
            (DATABASE,),
        )
        return [name for (name,) in rows]

    def write_conf(self, path: pathlib.Path, cloud: Cloud) -> pathlib.Path:
        """The cloud's cinder.conf: its options, where None leaves Cinder's default."""
        default = "".join(f"{name} = {value}\n" for name, value in cloud.options.written().items())
        path.write_text(f"[DEFAULT]\n{default}\n[database]\nconnection = {self.url}\n")
        return path

    def load(self, cloud: Cloud) -> None:
        """Replace every service row by the cloud's (plain SQL with explicit ids, as an operator's
        database would hold them)."""
        with closing(self.mariadb.admin(DATABASE)) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM services")
            if cloud.services:
                columns = list(cloud.services[0])
                cur.executemany(
                    "INSERT INTO services ({}) VALUES ({})".format(
                        ", ".join(f"`{c}`" for c in columns), ", ".join(["%s"] * len(columns))
                    ),
                    [tuple(row[c] for c in columns) for row in cloud.services],
                )
