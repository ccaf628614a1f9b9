"""A Neutron database made by Neutron's own tooling (`neutron-db-manage upgrade heads` from the oracle
venv) on the test MariaDB, once per session.

Clouds are then written into it (`load` replaces every `agents` row), and each cloud gets its own
configuration directory laid out as neutron-server's (`write_conf`): `neutron.conf` and
`plugins/ml2/ml2_conf.ini`, read by both Neutron and the exporter.
"""

from __future__ import annotations

import collections
import pathlib
import time
from contextlib import closing

import neutron_random
import oracles

DATABASE = "conf_neutron"
# neutron/server/__init__.py, _get_config_files: the files neutron-api reads from its config dir.
NEUTRON_CONF = "neutron.conf"
ML2_CONF = "plugins/ml2/ml2_conf.ini"


class NeutronDeployment:
    def __init__(self, mariadb, oracle_python: pathlib.Path, workdir: pathlib.Path):
        self.mariadb = mariadb
        self.db_manage = str(oracle_python.parent / "neutron-db-manage")
        self.workdir = workdir
        self.tally = collections.Counter()  # clouds and rows compared, the schema's build time

    @property
    def url(self) -> str:
        return self.mariadb.url(DATABASE)

    def create(self) -> None:
        self.mariadb.empty_database(DATABASE)
        conf = self.workdir / "setup.conf"
        conf.write_text(f"[database]\nconnection = {self.url}\n")
        started = time.monotonic()
        oracles.run_tool([self.db_manage, "--config-file", str(conf), "upgrade", "heads"], timeout=900)
        self.tally["schema_seconds"] = time.monotonic() - started

    def load(self, cloud: neutron_random.Cloud) -> None:
        """Replace every agents row by the cloud's, in plain SQL under the schema's own constraints
        (the unique key (agent_type, host) included)."""
        with closing(self.mariadb.admin(DATABASE)) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM agents")
            if cloud.agents:
                columns = list(cloud.agents[0])
                cur.executemany(
                    "INSERT INTO agents ({}) VALUES ({})".format(
                        ", ".join(f"`{c}`" for c in columns), ", ".join(["%s"] * len(columns))
                    ),
                    [tuple(row[c] for c in columns) for row in cloud.agents],
                )

    def write_conf(
        self, directory: pathlib.Path, options: neutron_random.Options, mechanism_drivers: str = "openvswitch"
    ) -> list[pathlib.Path]:
        """The cloud's neutron.conf and ml2_conf.ini under `directory`, in the order neutron-api reads them."""
        neutron_conf, ml2_conf = directory / NEUTRON_CONF, directory / ML2_CONF
        ml2_conf.parent.mkdir(parents=True, exist_ok=True)
        default = "" if options.agent_down_time is None else f"agent_down_time = {options.agent_down_time}\n"
        neutron_conf.write_text(f"[DEFAULT]\n{default}[database]\nconnection = {self.url}\n")
        ml2_conf.write_text(f"[ml2]\nmechanism_drivers = {mechanism_drivers}\n")
        return [neutron_conf, ml2_conf]
