"""Private OVN databases for the tests: ovsdb-server processes of Debian's ovn-central, each with its own
database file made by ovsdb-tool from OVN's schema, listening on 127.0.0.1 (tcp: and, with a CA made
here by openssl, ssl:) and on a unix socket in the test's folder.

Only the processes started here are ever stopped (by their pid). Rows are written over the OVSDB
protocol with the `ovs` library's JSON-RPC client, in one transaction per call.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass

import ovs.jsonrpc
import ovs.stream
import pytest
from mariadb import ChildServer, free_port

SCHEMAS = pathlib.Path("/usr/share/ovn")
DATABASES = {"nb": ("OVN_Northbound", "ovn-nb.ovsschema"), "sb": ("OVN_Southbound", "ovn-sb.ovsschema")}


def _binary(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)


def ensure_installed() -> None:
    """ovsdb-server, ovsdb-tool and OVN's schemas; installs ovn-central when it can (root with apt-get)."""

    def ready():
        return all(_binary(b) for b in ("ovsdb-server", "ovsdb-tool")) and all(
            (SCHEMAS / schema).exists() for _, schema in DATABASES.values()
        )

    if ready():
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "ovn-central"], check=True, env=env
        )
    if not ready():
        pytest.fail(
            "ovsdb-server and OVN's schemas are not installed and could not be installed: apt-get install ovn-central",
            pytrace=False,
        )


@dataclass(frozen=True)
class Pki:
    """A CA, and a server's and a client's key and certificate signed by it (PEM files)."""

    ca_cert: pathlib.Path
    server_key: pathlib.Path
    server_cert: pathlib.Path
    client_key: pathlib.Path
    client_cert: pathlib.Path


def make_pki(folder: pathlib.Path, name: str = "ovn") -> Pki:
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN={name} test CA",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca-cert.pem",
    )
    for who in ("server", "client"):
        run(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name} {who}",
            "-keyout",
            f"{who}-key.pem",
            "-out",
            f"{who}.csr",
        )
        run(
            "x509",
            "-req",
            "-in",
            f"{who}.csr",
            "-CA",
            "ca-cert.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            f"{who}-cert.pem",
        )
    return Pki(
        *(folder / f for f in ("ca-cert.pem", "server-key.pem", "server-cert.pem", "client-key.pem", "client-cert.pem"))
    )


class OvsdbServer(ChildServer):
    """One OVN database ("nb" or "sb") served by its own ovsdb-server."""

    def __init__(self, base: pathlib.Path, kind: str, pki: Pki | None = None):
        ensure_installed()
        self.base = base
        self.kind = kind
        self.database, schema = DATABASES[kind]
        base.mkdir(parents=True, exist_ok=True)
        self.file = base / f"{kind}.db"
        subprocess.run([_binary("ovsdb-tool"), "create", str(self.file), str(SCHEMAS / schema)], check=True)
        self.socket = base / f"{kind}.sock"
        self.port = free_port()
        self.pki = pki
        self.ssl_port = free_port() if pki else None
        self.proc: subprocess.Popen | None = None

    @property
    def tcp(self) -> str:
        return f"tcp:127.0.0.1:{self.port}"

    @property
    def unix(self) -> str:
        return f"unix:{self.socket}"

    @property
    def ssl(self) -> str:
        return f"ssl:127.0.0.1:{self.ssl_port}"

    def start(self) -> None:
        args = [
            _binary("ovsdb-server"),
            str(self.file),
            f"--remote=punix:{self.socket}",
            f"--remote=ptcp:{self.port}:127.0.0.1",
            f"--unixctl={self.base / (self.kind + '.ctl')}",
            f"--log-file={self.base / (self.kind + '.log')}",
            "--no-chdir",
        ]
        if self.pki:
            args += [
                f"--remote=pssl:{self.ssl_port}:127.0.0.1",
                f"--private-key={self.pki.server_key}",
                f"--certificate={self.pki.server_cert}",
                f"--ca-cert={self.pki.ca_cert}",
            ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ovsdb-server exited: " + (self.base / (self.kind + ".log")).read_text()[-2000:])
            try:
                self.transact([])
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("ovsdb-server did not start within 30 s")

    def transact(self, ops: list[dict]) -> list:
        """One transaction over the unix socket; the operations' results (an operation's error raises)."""
        error, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(self.unix), 10_000)
        if error:
            raise OSError(error, f"cannot connect to {self.unix}")
        conn = ovs.jsonrpc.Connection(stream)
        try:
            request = ovs.jsonrpc.Message.create_request("transact", [self.database, *ops])
            error, reply = conn.transact_block(request)
        finally:
            conn.close()
        if error:
            raise OSError(error, f"{self.unix}: transact failed")
        if reply.error:
            raise RuntimeError(f"{self.database}: {reply.error}")
        failed = [r for r in reply.result if isinstance(r, dict) and "error" in r]
        if failed:
            raise RuntimeError(f"{self.database}: {failed}")
        return reply.result


def ovsdb_map(pairs: dict) -> list:
    return ["map", [[str(k), str(v)] for k, v in pairs.items()]]


@dataclass
class Chassis:
    """One chassis as ovn-controller and Neutron's agents leave it in the southbound database."""

    name: str
    hostname: str
    nb_cfg: int = 0
    nb_cfg_timestamp: int = 0  # ms since 1970
    private_external_ids: dict | None = None  # Chassis_Private.external_ids (the Neutron agents' keys)
    other_config: dict | None = None  # Chassis.other_config (ovn-cms-options)
    external_ids: dict | None = None  # Chassis.external_ids
    has_chassis: bool = True  # False: an orphaned Chassis_Private
    has_private: bool = True  # False: a Chassis without its Chassis_Private


def chassis_ops(chassis: list[Chassis], first: int = 0) -> list[dict]:
    """Inserts of Encap, Chassis and Chassis_Private rows for `chassis` in one transaction (`first`:
    the number of the first, so that encapsulation addresses stay unique over several transactions)."""
    ops = []
    for n, ch in enumerate(chassis, first):
        ref = f"ch{n}"
        if ch.has_chassis:
            ops.append(
                {
                    "op": "insert",
                    "table": "Encap",
                    "uuid-name": f"en{n}",
                    "row": {
                        "type": "geneve",
                        "ip": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
                        "chassis_name": ch.name,
                    },
                }
            )
            ops.append(
                {
                    "op": "insert",
                    "table": "Chassis",
                    "uuid-name": ref,
                    "row": {
                        "name": ch.name,
                        "hostname": ch.hostname,
                        "encaps": ["named-uuid", f"en{n}"],
                        "other_config": ovsdb_map(ch.other_config or {}),
                        "external_ids": ovsdb_map(ch.external_ids or {}),
                    },
                }
            )
        if ch.has_private:
            row = {
                "name": ch.name,
                "nb_cfg": ch.nb_cfg,
                "nb_cfg_timestamp": ch.nb_cfg_timestamp,
                "external_ids": ovsdb_map(ch.private_external_ids or {}),
            }
            if ch.has_chassis:
                row["chassis"] = ["named-uuid", ref]
            ops.append({"op": "insert", "table": "Chassis_Private", "row": row})
    return ops


class OvnDatabases:
    """A northbound and a southbound database, each with its own server."""

    def __init__(self, base: pathlib.Path, pki: Pki | None = None):
        self.nb = OvsdbServer(base / "nb", "nb", pki)
        self.sb = OvsdbServer(base / "sb", "sb", pki)

    def start(self) -> OvnDatabases:
        self.nb.start()
        self.sb.start()
        self.nb.transact([{"op": "insert", "table": "NB_Global", "row": {}}])
        return self

    def stop(self) -> None:
        self.nb.stop()
        self.sb.stop()

    def set_nb_cfg(self, nb_cfg: int, external_ids: dict | None = None) -> None:
        row = {"nb_cfg": nb_cfg}
        if external_ids is not None:
            row["external_ids"] = ovsdb_map(external_ids)
        self.nb.transact([{"op": "update", "table": "NB_Global", "where": [], "row": row}])

    def set_chassis(self, chassis: list[Chassis], batch: int = 2000) -> None:
        """The southbound database's chassis become exactly `chassis`."""
        self.sb.transact(
            [{"op": "delete", "table": table, "where": []} for table in ("Chassis_Private", "Chassis", "Encap")]
        )
        for start in range(0, len(chassis), batch):
            self.sb.transact(chassis_ops(chassis[start : start + batch], start))


def new_id() -> str:
    return str(uuid.uuid4())
