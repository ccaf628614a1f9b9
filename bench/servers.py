"""The processes the benchmark starts: a private MariaDB (the tests' own class) and the exporter."""

from __future__ import annotations

import contextlib
import http.client
import os
import pathlib
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from mariadb import PASSWORD, USER, MariaDB, free_port, terminate  # noqa: E402,F401  (tests/mariadb.py; free_port for run)

DRIVERS = ("mysqldb", "pymysql")


def start_mariadb(base: pathlib.Path) -> MariaDB:
    server = MariaDB(base)
    server.install()
    server.start()
    server.create_user()
    return server


def exporter_command(
    driver: str, patches: tuple[str, ...] = (), package: str = "openstack_service_exporter"
) -> list[str]:
    """The exporter's command line. driver "pymysql": MySQLdb is hidden, so that engines.py falls
    back to PyMySQL; patches: changes put in to measure them (bench/patches.py); package: the import
    package (an older revision's tree has `exporter`)."""
    if driver == "mysqldb" and not patches:
        return [sys.executable, "-m", package]
    code = ["import sys"]
    if driver == "pymysql":
        code.append("sys.modules['MySQLdb'] = None")
    if patches:
        code.append(f"import bench.patches; bench.patches.apply({list(patches)!r})")
    code.append(
        "from openstack_service_exporter.cli import main; sys.argv[0] = 'openstack-service-exporter'; sys.exit(main())"
    )
    return [sys.executable, "-c", "; ".join(code)]


def write_conf(path: pathlib.Path, api_url: str, cell_url: str, port: int, query_timeout: float = 30) -> pathlib.Path:
    path.write_text(f"""[DEFAULT]
service_down_time = 60
report_interval = 10

[database]
connection = {cell_url}

[api_database]
connection = {api_url}

[exporter]
listen_address = 127.0.0.1:{port}
query_timeout = {query_timeout}
log_level = WARNING
""")
    return path


class Exporter:
    """`openstack-service-exporter serve` in its own process, with one driver."""

    def __init__(
        self,
        conf: pathlib.Path,
        port: int,
        driver: str,
        log: pathlib.Path,
        patches: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        tree: pathlib.Path = REPO,
    ):
        """tree: the source tree whose exporter runs (another revision's, to compare)."""
        self.conf, self.port, self.driver, self.log, self.patches = conf, port, driver, log, tuple(patches)
        self.tree = tree
        self.env = dict(os.environ, **(env or {}))
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Exporter:
        self._log = open(self.log, "ab")
        package = "exporter" if (self.tree / "exporter").is_dir() else "openstack_service_exporter"
        command = exporter_command(self.driver, self.patches, package) + ["--config-file", str(self.conf), "serve"]
        self.proc = subprocess.Popen(command, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.tree)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exporter exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                status, _, _ = get(self.port, "/healthz")
                if status == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError("exporter did not answer within 60 s")

    def __exit__(self, *exc) -> None:
        if self.proc:
            terminate(self.proc, 20)
        self._log.close()

    @property
    def pid(self) -> int:
        return self.proc.pid


SCRAPE_HEADERS = {"Accept-Encoding": "gzip", "X-Prometheus-Scrape-Timeout-Seconds": "10"}


def get(port: int, path: str, headers: dict | None = None, timeout: float = 60) -> tuple[int, dict, bytes]:
    """One HTTP GET on a new connection, as Prometheus makes it; the whole body is read."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, dict(response.getheaders()), body
    finally:
        conn.close()


def proc_status(pid: int) -> dict[str, int]:
    """RSS and peak RSS (kB), threads and open file descriptors of a process, from /proc."""
    out = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
        elif key == "Threads":
            out[key] = int(value)
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def com_select(db: MariaDB) -> int:
    return int(db.execute("SHOW GLOBAL STATUS LIKE 'Com_select'")[0][1])
