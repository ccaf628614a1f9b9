"""Private OVN databases for the tests: the package's ovsdb-server processes
(openstack_service_exporter/ovn_servers.py), listening on 127.0.0.1 (tcp: and, with a CA made here by
openssl, ssl:) and on a unix socket in the test's folder; stopped, or hung and resumed, by their pid.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest
from mariadb import ChildServer, free_port
from pki import Pki, make_pki  # noqa: F401 (the tests' names)

from openstack_service_exporter import ovn_servers
from openstack_service_exporter.ovn_servers import Chassis, chassis_ops, ovsdb_map  # noqa: F401 (the tests' names)


def ensure_installed() -> None:
    """ovsdb-server, ovsdb-tool and OVN's schemas; installs ovn-central when it can (root with apt-get)."""
    if ovn_servers.missing() is None:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "ovn-central"], check=True, env=env
        )
    why = ovn_servers.missing()
    if why is not None:
        pytest.fail(f"OVN's databases cannot be started: {why}", pytrace=False)


class OvsdbServer(ChildServer, ovn_servers.OvsdbServer):
    """One OVN database ("nb" or "sb") served by its own ovsdb-server, on every kind of connection."""

    def __init__(self, base: pathlib.Path, kind: str, pki: Pki | None = None):
        ensure_installed()
        ssl = (str(pki.server_key), str(pki.server_cert), str(pki.ca_cert)) if pki else None
        super().__init__(base, kind, free_port(), ssl, free_port() if pki else None)
        self.pki = pki


class OvnDatabases(ovn_servers.OvnDatabases):
    """A northbound and a southbound database, each with its own server."""

    def __init__(self, base: pathlib.Path, pki: Pki | None = None):
        super().__init__(OvsdbServer(base / "nb", "nb", pki), OvsdbServer(base / "sb", "sb", pki))
