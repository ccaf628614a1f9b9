"""Private OVN databases: ovsdb-server processes (Open vSwitch's, with OVN's schemas as Debian's
ovn-central installs them), each with its own database file made by ovsdb-tool, listening on a unix
socket in its folder and, when asked, on 127.0.0.1 (tcp:, and ssl: with the PEM files given). The demo
runs its ML2/OVN agents on them, and so do the tests.

Only the processes started here are ever stopped (by their pid). Rows are written over the OVSDB
protocol with the `ovs` library's JSON-RPC client, in one transaction per call.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from .sources import ovsdb

SCHEMAS = pathlib.Path("/usr/share/ovn")  # where ovn-central puts them
DATABASES = {"nb": ("OVN_Northbound", "ovn-nb.ovsschema"), "sb": ("OVN_Southbound", "ovn-sb.ovsschema")}
INSTALL = "apt-get install ovn-central"


def binary(name: str) -> str | None:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    return found


def missing() -> str | None:
    """Why OVN's databases cannot be started here, or None."""
    absent = [b for b in ("ovsdb-server", "ovsdb-tool") if not binary(b)]
    absent += [str(SCHEMAS / schema) for _, schema in DATABASES.values() if not (SCHEMAS / schema).exists()]
    if absent:
        return f"{', '.join(absent)} not installed ({INSTALL})"
    if not ovsdb.available():
        return ovsdb.MISSING
    return None


class OvsdbServer:
    """One OVN database ("nb" or "sb") served by its own ovsdb-server."""

    def __init__(
        self,
        base: pathlib.Path,
        kind: str,
        port: int | None = None,
        ssl: tuple[str, str, str] | None = None,  # private key, certificate, CA certificate
        ssl_port: int | None = None,
    ):
        self.base = base
        self.kind = kind
        self.database, schema = DATABASES[kind]
        base.mkdir(parents=True, exist_ok=True)
        self.file = base / f"{kind}.db"
        subprocess.run([_required("ovsdb-tool"), "create", str(self.file), str(SCHEMAS / schema)], check=True)
        self.socket = base / f"{kind}.sock"
        self.port, self.ssl_files, self.ssl_port = port, ssl, ssl_port
        self.proc: subprocess.Popen[bytes] | None = None

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
        log = self.base / f"{self.kind}.log"
        args = [
            _required("ovsdb-server"),
            str(self.file),
            f"--remote=punix:{self.socket}",
            f"--unixctl={self.base / (self.kind + '.ctl')}",
            f"--log-file={log}",
            "--no-chdir",
        ]
        if self.port:
            args.append(f"--remote=ptcp:{self.port}:127.0.0.1")
        if self.ssl_files and self.ssl_port:
            key, cert, ca = self.ssl_files
            args += [f"--remote=pssl:{self.ssl_port}:127.0.0.1", f"--private-key={key}", f"--certificate={cert}"]
            args.append(f"--ca-cert={ca}")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ovsdb-server exited: " + log.read_text()[-2000:])
            try:
                self.transact([])
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("ovsdb-server did not start within 30 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def transact(self, ops: list[dict[str, Any]]) -> list[Any]:
        """One transaction over the unix socket; the operations' results (an operation's error raises)."""
        import ovs.jsonrpc
        import ovs.stream

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
        return reply.result  # type: ignore[no-any-return]


def _required(name: str) -> str:
    found = binary(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed ({INSTALL})")
    return found


def ovsdb_map(pairs: dict[str, Any]) -> list[Any]:
    return ["map", [[str(k), str(v)] for k, v in pairs.items()]]


@dataclass
class Chassis:
    """One chassis as ovn-controller and Neutron's agents leave it in the southbound database."""

    name: str
    hostname: str
    nb_cfg: int = 0
    nb_cfg_timestamp: int = 0  # ms since 1970
    private_external_ids: dict[str, str] | None = None  # Chassis_Private.external_ids (the Neutron agents' keys)
    other_config: dict[str, str] | None = None  # Chassis.other_config (ovn-cms-options)
    external_ids: dict[str, str] | None = None  # Chassis.external_ids
    has_chassis: bool = True  # False: an orphaned Chassis_Private
    has_private: bool = True  # False: a Chassis without its Chassis_Private


def chassis_ops(chassis: list[Chassis], first: int = 0) -> list[dict[str, Any]]:
    """Inserts of Encap, Chassis and Chassis_Private rows for `chassis` in one transaction (`first`:
    the number of the first, so that encapsulation addresses stay unique over several transactions)."""
    ops: list[dict[str, Any]] = []
    for n, ch in enumerate(chassis, first):
        ref = f"ch{n}"
        if ch.has_chassis:
            address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
            encap = {"type": "geneve", "ip": address, "chassis_name": ch.name}
            ops.append({"op": "insert", "table": "Encap", "uuid-name": f"en{n}", "row": encap})
            row = {
                "name": ch.name,
                "hostname": ch.hostname,
                "encaps": ["named-uuid", f"en{n}"],
                "other_config": ovsdb_map(ch.other_config or {}),
                "external_ids": ovsdb_map(ch.external_ids or {}),
            }
            ops.append({"op": "insert", "table": "Chassis", "uuid-name": ref, "row": row})
        if ch.has_private:
            private: dict[str, Any] = {
                "name": ch.name,
                "nb_cfg": ch.nb_cfg,
                "nb_cfg_timestamp": ch.nb_cfg_timestamp,
                "external_ids": ovsdb_map(ch.private_external_ids or {}),
            }
            if ch.has_chassis:
                private["chassis"] = ["named-uuid", ref]
            ops.append({"op": "insert", "table": "Chassis_Private", "row": private})
    return ops


class OvnDatabases:
    """A northbound and a southbound database, each with its own server."""

    def __init__(self, nb: OvsdbServer, sb: OvsdbServer):
        self.nb, self.sb = nb, sb

    @classmethod
    def in_folder(cls, base: pathlib.Path) -> OvnDatabases:
        """Both on unix sockets only, in `base`."""
        return cls(OvsdbServer(base / "nb", "nb"), OvsdbServer(base / "sb", "sb"))

    def start(self) -> OvnDatabases:
        self.nb.start()
        self.sb.start()
        self.nb.transact([{"op": "insert", "table": "NB_Global", "row": {}}])
        return self

    def stop(self) -> None:
        self.nb.stop()
        self.sb.stop()

    def set_nb_cfg(self, nb_cfg: int, external_ids: dict[str, str] | None = None) -> None:
        row: dict[str, Any] = {"nb_cfg": nb_cfg}
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
