"""The front door attacked as a client on the management network would, over real loopback sockets:
header floods, idle and one-byte-a-second connections, readers that never read, a scrape timeout
meant to decide everyone's reading, user enumeration by timing, ruinous bcrypt costs. During each
attack a normal scrape still gets its whole answer and the process stays within its memory and
thread bounds; after it, both come back.

The limits are the server's own; only the two deadlines are shortened here (READ_HEADER_TIMEOUT,
WRITE_TIMEOUT, set in the exporter's process before it starts) so that the suite waits seconds, not
minutes. Speed is judged in bench/ (python3 -m bench attacks), not here.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import pathlib
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time

import bcrypt
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from cloud import T, add_cell, insert_services, service  # noqa: E402
from helpers import free_port, get, scrape, series, served, to_us  # noqa: E402
from mariadb import terminate  # noqa: E402
from pki import make_pki  # noqa: E402
from promserver import wait_for  # noqa: E402
from test_reliability import cloud  # noqa: E402,F401  (a fixture)

from bench.attacks import send_header_flood  # noqa: E402
from openstack_service_exporter.webconfig import load_web_config  # noqa: E402

RSS_LIMIT_KB = 250 * 1024
THREAD_LIMIT = 20  # README, Security: 12 + cell_concurrency (8)
HEAD_DEADLINE = 3.0
WRITE_DEADLINE = 3.0
LEAKY = "Pw/Sec@ret:50%#?tail"  # every character that breaks a URL parser, raw


# -- the exporter in its own process ------------------------------------------------------------

RUNNER = """
import contextlib, importlib, sys
for module, name, value in {patches!r}:
    with contextlib.suppress(ImportError):
        setattr(importlib.import_module(module), name, value)
from openstack_service_exporter.cli import main
sys.exit(main(sys.argv[1:]))
"""


class Exporter:
    """`openstack-service-exporter serve` in a child process, its deadlines shortened."""

    def __init__(self, tmp_path, args: list[str], scheme: str = "http"):
        self.port = free_port()
        patches = [
            ("openstack_service_exporter.server", "READ_HEADER_TIMEOUT", HEAD_DEADLINE),
            ("openstack_service_exporter.http", "WRITE_TIMEOUT", WRITE_DEADLINE),
        ]
        self.log = open(tmp_path / f"exporter-{self.port}.log", "w+")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                RUNNER.format(patches=patches),
                *args,
                "--exporter-listen_address",
                f"127.0.0.1:{self.port}",
                "serve",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        wait_for("the exporter to answer", self._up, 30)

    def _up(self) -> bool:
        assert self.proc.poll() is None, self.output()
        with contextlib.suppress(OSError):
            return get(self.base + "/healthz", timeout=2, context=ssl._create_unverified_context())[0] == 200
        return False

    def status(self, rss: str = "VmRSS") -> tuple[int, int]:
        """(RSS in kB, threads) of the process now; VmHWM: its highest RSS yet."""
        fields = dict(line.split(":", 1) for line in open(f"/proc/{self.proc.pid}/status"))
        return int(fields[rss].split()[0]), int(fields["Threads"])

    def output(self) -> str:
        if self.log.closed:
            return self.said
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> str:
        terminate(self.proc, 20)
        self.said = self.output()
        self.log.close()
        return self.said


@contextlib.contextmanager
def exporter(tmp_path, args, scheme: str = "http"):
    child = Exporter(tmp_path, args, scheme)
    try:
        yield child
    finally:
        child.stop()


class Watch:
    """RSS and threads of a process sampled every 0.1 s while an attack runs."""

    def __init__(self, child: Exporter):
        self.child, self.peak_rss, self.peak_threads = child, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            with contextlib.suppress(OSError, KeyError):
                rss, threads = self.child.status()
                self.peak_rss, self.peak_threads = max(self.peak_rss, rss), max(self.peak_threads, threads)
            self._stop.wait(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def quiet(child: Exporter) -> tuple[int, int]:
    """What normal scrapes cost: the highest RSS of a scrape of each kind, and the threads at rest."""
    for headers in ({"Accept-Encoding": "gzip"}, {}):
        assert get(child.base + "/metrics", headers=headers, timeout=30)[0] == 200
    time.sleep(0.5)
    return child.status("VmHWM")[0], child.status()[1]


def back_to_quiet(child: Exporter, rss: int, threads: int) -> None:
    # What the allocator keeps of the memory freed is up to 10%: glibc's free heap goes back to the
    # system after a burst of connections (the server's malloc_trim), but pymalloc keeps each 1 MiB
    # arena that still holds a live object, e.g. of the reading made during the attack; repeated
    # attacks add fewer such arenas each time, then none (bench/ANALYSIS.md, "The front door's memory
    # during and after attacks").
    margin = rss // 10
    deadline = time.monotonic() + 15
    while True:
        now = child.status()
        if now[0] <= rss + margin and now[1] <= threads:
            return
        assert time.monotonic() < deadline, f"RSS and threads {now} did not come back to {(rss, threads)}"
        time.sleep(0.2)


def normal_scrape(child: Exporter, services: int) -> None:
    """A scrape as Prometheus makes it, whole: every service listed, every database up."""
    status, headers, body = get(
        child.base + "/metrics",
        timeout=30,
        headers={"Accept-Encoding": "gzip", "X-Prometheus-Scrape-Timeout-Seconds": "10"},
    )
    text = gzip.decompress(body)
    assert status == 200 and text.count(b"\nservice_up{") == services
    health = [line for line in text.splitlines() if line.startswith(b"service_exporter_database_up{")]
    assert health and all(line.endswith(b" 1.0") for line in health), health


# -- clouds --------------------------------------------------------------------------------------


def cloud_args(mariadb, new_db, services: int, cells: int = 2) -> list[str]:
    api = new_db("api")
    each = services // cells
    for c in range(cells):
        db = new_db("services")
        add_cell(mariadb, api, f"cell{c + 1}", mariadb.url(db))
        insert_services(mariadb, db, [service(f"cmp-{c}-{i:05d}.example.net") for i in range(each)])
    return ["--api_database-connection", mariadb.url(api), "--exporter-log_level", "DEBUG"]


@pytest.fixture(scope="module")
def big_cloud(mariadb, database_factory):
    """40,000 services in two cells."""
    return cloud_args(mariadb, database_factory, 40_000)


# -- floods ------------------------------------------------------------------------------------


def test_one_oversized_head_gets_431_before_any_auth(mariadb, new_db, tmp_path):
    args = cloud_args(mariadb, new_db, 10)
    with exporter(tmp_path, args) as child, socket.create_connection(("127.0.0.1", child.port), 10) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 40_000 + b"\r\n\r\n")
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 431 ")


def _flood(port: int, results: list):
    """One header flood (bench.attacks), as fast as the server takes it."""
    try:
        with socket.create_connection(("127.0.0.1", port), 10) as s:
            send_header_flood(s)
            results.append(b"all sent, then " + s.recv(64)[:12])  # the server read 6.4 MB of headers
    except OSError as exc:  # the server closed it while we were still sending: what it should do
        results.append(type(exc).__name__)


def test_header_flood(big_cloud, tmp_path):
    with exporter(tmp_path, big_cloud) as child:
        rss, threads = quiet(child)
        results: list = []
        attackers = [threading.Thread(target=_flood, args=(child.port, results)) for _ in range(20)]
        with Watch(child) as watch:
            for a in attackers:
                a.start()
            normal_scrape(child, 40_000)
            for a in attackers:
                a.join(60)
        assert len(results) == 20 and set(results) <= {"ConnectionResetError", "BrokenPipeError"}, results
        assert watch.peak_rss < RSS_LIMIT_KB and watch.peak_threads <= THREAD_LIMIT, vars(watch)
        back_to_quiet(child, rss, threads)


def test_idle_and_one_byte_a_second_connections(big_cloud, tmp_path):
    """1,000 connections that say nothing and 200 that send one byte of a header a second: the
    deadline of the head ends them all, the connection bound never keeps a scrape out, and no
    connection costs a thread."""
    with exporter(tmp_path, big_cloud) as child:
        rss, threads = quiet(child)
        idle = [socket.create_connection(("127.0.0.1", child.port), 10) for _ in range(1000)]
        slow = [socket.create_connection(("127.0.0.1", child.port), 10) for _ in range(200)]
        started = time.monotonic()
        try:
            with Watch(child) as watch:
                for s in slow:
                    s.sendall(b"GET /metrics HTTP/1.1\r\n")
                for second in range(int(HEAD_DEADLINE) + 3):
                    for s in slow:
                        with contextlib.suppress(OSError):
                            s.send(b"X")
                    if second == 1:
                        normal_scrape(child, 40_000)
                    time.sleep(max(0.0, started + second + 1 - time.monotonic()))
            assert watch.peak_rss < RSS_LIMIT_KB and watch.peak_threads <= THREAD_LIMIT, vars(watch)
            # Every one of them was closed by the server (EOF or reset), none answered.
            for s in idle + slow:
                s.settimeout(HEAD_DEADLINE + 5)
                with contextlib.suppress(ConnectionResetError):
                    assert s.recv(64) == b""
        finally:
            for s in idle + slow:
                s.close()
        back_to_quiet(child, rss, threads)


def test_readers_that_never_read_are_dropped(big_cloud, tmp_path):
    """20 plain-text scrapes of 40,000 services whose clients never read: they hold no reading or
    text of their own, and are dropped when the write deadline passes."""
    with exporter(tmp_path, big_cloud) as child:
        rss, threads = quiet(child)
        full = len(get(child.base + "/metrics", timeout=30)[2])
        stalled = []
        for _ in range(20):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", child.port))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            stalled.append(s)
        try:
            with Watch(child) as watch:
                time.sleep(1)
                normal_scrape(child, 40_000)
                time.sleep(WRITE_DEADLINE + 1)
            assert watch.peak_rss < RSS_LIMIT_KB and watch.peak_threads <= THREAD_LIMIT, vars(watch)
            for s in stalled:  # cut short, then closed
                s.settimeout(10)
                got = 0
                with contextlib.suppress(ConnectionResetError):
                    while chunk := s.recv(1 << 20):
                        got += len(chunk)
                assert got < full
        finally:
            for s in stalled:
                s.close()
        back_to_quiet(child, rss, threads)


# -- the reading's budget ------------------------------------------------------------------------


@pytest.fixture
def two_cells(cloud):  # noqa: F811 - the fixture imported above
    """test_reliability's cloud (cell1: 20 services, cell2: 10) and cell1's database name."""
    return cloud, cloud.sources[0].database_connection.rsplit("/", 1)[1].split("?")[0]


@contextlib.contextmanager
def locked_for(mariadb, database: str, seconds: float):
    """The cell's services table write-locked: its reads wait `seconds`."""
    admin = mariadb.admin(database)
    with admin.cursor() as cur:
        cur.execute("LOCK TABLES services WRITE")
    timer = threading.Timer(seconds, lambda: (admin.cursor().execute("UNLOCK TABLES"), admin.close()))
    timer.start()
    try:
        yield
    finally:
        timer.join()


def database_up(text: str) -> dict[str, float]:
    from helpers import samples

    return {dict(k[1])["cell"]: v for k, v in samples(text).items() if k[0] == "service_exporter_database_up"}


def test_a_tiny_scrape_timeout_does_not_decide_prometheus_reading(mariadb, two_cells):
    settings, cell1 = two_cells
    with served(settings, clock=lambda: to_us(T), share_recent=True) as (base, _):
        scrape(base)  # connections, columns
        answers = {}

        def attacker():
            answers["attacker"] = scrape(base, headers={"X-Prometheus-Scrape-Timeout-Seconds": "0.001"})

        with locked_for(mariadb, cell1, 1.0):
            thread = threading.Thread(target=attacker)
            thread.start()
            time.sleep(0.03)  # Prometheus comes while the attacker's reading is under way
            prometheus = scrape(base, headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"})
            thread.join()
    assert database_up(answers["attacker"])["cell1"] == 0.0  # the attack was real
    assert database_up(prometheus)["cell1"] == 1.0 and len(series(prometheus, "service_up")) == 30


@pytest.mark.parametrize("told", ["nan", "inf", "1e999"])
def test_an_absurd_scrape_timeout_gets_the_default(mariadb, two_cells, told):
    settings, cell1 = two_cells
    with served(settings, clock=lambda: to_us(T)) as (base, _):
        scrape(base)
        with locked_for(mariadb, cell1, 0.5):
            text = scrape(base, headers={"X-Prometheus-Scrape-Timeout-Seconds": told})
    assert database_up(text)["cell1"] == 1.0 and len(series(text, "service_up")) == 30


# -- basic auth ----------------------------------------------------------------------------------


def web_config(path, users: dict[str, str], cost: int = 9, extra: str = "") -> str:
    lines = ["basic_auth_users:"] + [
        f"  {u}: '{bcrypt.hashpw(p.encode(), bcrypt.gensalt(cost)).decode()}'" for u, p in users.items()
    ]
    path.write_text("\n".join(lines) + "\n" + extra)
    return str(path)


def auth(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_unknown_and_known_users_cost_the_same(two_cells, tmp_path):
    web = load_web_config(web_config(tmp_path / "web.yml", {"prometheus": "right", "other": "also"}))
    times: dict[str, list[float]] = {"unknown": [], "known": []}
    with served(two_cells[0], clock=lambda: to_us(T), authorize=web.authorize) as (base, _):
        for i in range(15):
            for kind, user in (("unknown", "nobody"), ("known", "prometheus")):
                started = time.perf_counter()
                assert get(base + "/", headers=auth(user, f"guess{i}"))[0] == 401
                times[kind].append(time.perf_counter() - started)
    unknown, known = statistics.median(times["unknown"]), statistics.median(times["known"])
    assert abs(unknown - known) <= 0.10 * known, (unknown, known)


def test_concurrent_guesses_are_bounded_and_never_500(two_cells, tmp_path):
    web = load_web_config(web_config(tmp_path / "web.yml", {"prometheus": "right"}))
    statuses: list[int] = []
    with served(two_cells[0], clock=lambda: to_us(T), authorize=web.authorize) as (base, _):
        assert get(base + "/metrics", headers=auth("prometheus", "right"))[0] == 200  # now cached
        guessers = [
            threading.Thread(
                target=lambda i=i: statuses.append(get(base + "/", headers=auth("prometheus", f"guess{i}"))[0])
            )
            for i in range(60)
        ]
        for g in guessers:
            g.start()
        # The right credentials need no bcrypt: answered while the guesses wait for theirs.
        assert get(base + "/metrics", headers=auth("prometheus", "right"))[0] == 200
        for g in guessers:
            g.join(60)
        malformed = [
            get(base + "/", headers={"Authorization": value})[0]
            for value in (
                "Basic",
                "Basic !!!",
                "Basic " + base64.b64encode(b"no-colon").decode(),
                "Basic " + base64.b64encode("é:ü".encode()).decode(),
                "Bearer x",
                "Basic " + base64.b64encode(b"prometheus:" + b"x" * 100).decode(),
            )
        ]
    assert len(statuses) == 60 and set(statuses) == {401, 429}, sorted(set(statuses))
    assert malformed == [401] * 6


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        s.sendall(request)
        return b"".join(iter(lambda: s.recv(65536), b""))


def test_non_ascii_authorization_is_401(two_cells, tmp_path):
    web = load_web_config(web_config(tmp_path / "web.yml", {"prometheus": "right"}))
    with served(two_cells[0], clock=lambda: to_us(T), authorize=web.authorize) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        answer = raw_request(
            port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic é\r\n\r\n".encode()
        )
    assert answer.startswith(b"HTTP/1.1 401 ")


def start_serve(args: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    """`serve` that must refuse to start: its exit code and output (a server that starts fails the test)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "openstack_service_exporter",
            "--database-connection",
            "sqlite://",
            "--exporter-listen_address",
            f"127.0.0.1:{free_port()}",
            *args,
            "serve",
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


BAD_WEB_CONFIGS = [
    ("basic_auth_users:\n  a: '$2b$31$" + "a" * 53 + "'\n", "cost 31"),
    ("basic_auth_users:\n  a: '$2b$12$short'\n", "not a bcrypt hash"),
    ("basic_auth_users:\n  a: '$2b$04$" + "a" * 53 + "'\n  a: '$2b$04$" + "b" * 53 + "'\n", "given twice"),
    ("http_server_config:\n  headers:\n    X-Powered-By: me\n", "cannot be configured"),
    ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "X-Frame-Options"),
    ("http_server_config:\n  http2: true\n", "HTTP/1.1 only"),
    (
        "tls_server_config:\n  cert_file: {crt}\n  key_file: {key}\n  min_version: TLS13\n  max_version: TLS12\n",
        "below min_version",
    ),
    (
        "tls_server_config:\n  cert_file: {crt}\n  key_file: {key}\n  client_auth_type: RequireAnyClientCert\n",
        "RequireAnyClientCert",
    ),
    (
        "tls_server_config:\n  cert_file: {crt}\n  key_file: {key}\n  client_ca_file: {crt}\n",
        "without a client_auth_type",
    ),
]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("tls"), "exporter")
    return pki.server_cert, pki.server_key


@pytest.mark.parametrize("content,expected", BAD_WEB_CONFIGS)
def test_web_configs_refused_at_start(tmp_path, certificate, content, expected):
    path = tmp_path / "web.yml"
    path.write_text(content.format(crt=certificate[0], key=certificate[1]))
    result = start_serve(["--exporter-web_config_file", str(path)])
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_http_server_config_headers_are_sent(two_cells, tmp_path):
    path = tmp_path / "web.yml"
    path.write_text(
        "http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n    X-Frame-Options: deny\n"
    )
    from helpers import serve_in_thread

    from openstack_service_exporter.coalesce import SharedReader
    from openstack_service_exporter.http import MetricsApp, make_http_server
    from openstack_service_exporter.reader import Reader

    web = load_web_config(str(path))
    reader = Reader(two_cells[0])
    app = MetricsApp(SharedReader(reader), two_cells[0], reader.clock, "pymysql", headers=web.headers)
    server = make_http_server(app, "127.0.0.1", 0)
    serve_in_thread(server)
    try:
        for target in ("/", "/metrics", "/nothing"):
            _, headers, _ = get(f"http://127.0.0.1:{server.server_address[1]}{target}")
            assert headers["Strict-Transport-Security"] == "max-age=31536000" and headers["X-Frame-Options"] == "deny"
    finally:
        server.shutdown()
        server.server_close()
        app.close()
        reader.close()


def test_tls_handshake_failures_are_no_tracebacks(certificate, tmp_path, mariadb, new_db):
    path = tmp_path / "web.yml"
    path.write_text(f"tls_server_config:\n  cert_file: {certificate[0]}\n  key_file: {certificate[1]}\n")
    args = cloud_args(mariadb, new_db, 10)
    with exporter(tmp_path, args[:2] + ["--exporter-web_config_file", str(path)], "https") as child:
        for request in (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x05hello"):
            with contextlib.suppress(OSError):
                raw_request(child.port, request)
        time.sleep(0.5)
    assert "Traceback" not in child.output()


# -- HTTP details --------------------------------------------------------------------------------


def test_head_absolute_form_server_and_content_type(two_cells):
    with served(two_cells[0], clock=lambda: to_us(T), min_interval=3600) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        get_answer = raw_request(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head_answer = raw_request(port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        absolute = raw_request(
            port, f"GET http://127.0.0.1:{port}/metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
    head, _, body = get_answer.partition(b"\r\n\r\n")
    headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    assert headers[b"Content-Type"] == b"text/plain; version=0.0.4; charset=utf-8"
    assert not any(c.isdigit() for c in headers.get(b"Server", b"").decode())
    head_head, _, head_body = head_answer.partition(b"\r\n\r\n")
    head_headers = dict(line.split(b": ", 1) for line in head_head.split(b"\r\n")[1:])
    # The text's real length (the snapshot age differs per scrape, not its length here: min_interval)
    assert head_body == b"" and int(head_headers[b"Content-Length"]) == len(body)
    assert absolute.startswith(b"HTTP/1.1 200 ") and b"service_up{" in absolute


def test_demo_listens_on_loopback_unless_told(monkeypatch):
    from openstack_service_exporter import cli

    seen = []
    monkeypatch.setattr(cli, "run_demo", lambda settings, args: seen.append(settings.listen_host) or 0)
    assert cli.main(["demo"]) == 0
    assert cli.main(["--exporter-listen_address", "0.0.0.0:9999", "demo"]) == 0
    assert seen == ["127.0.0.1", "0.0.0.0"]


# -- secrets -------------------------------------------------------------------------------------


def leaked(text: str) -> list[str]:
    """The pieces of LEAKY (and its encoded form) found in `text`."""
    import urllib.parse

    pieces = {LEAKY, urllib.parse.quote(LEAKY, safe="")} | {p for p in LEAKY.replace("@", " ").split() if len(p) >= 4}
    return [p for p in pieces if p in text]


def test_passwords_with_every_special_character_never_leak(mariadb, new_db, tmp_path):
    import urllib.parse

    mariadb.execute("CREATE USER IF NOT EXISTS 'leaky'@'%%' IDENTIFIED BY %s", (LEAKY,))
    db = new_db("services")
    mariadb.execute(f"GRANT SELECT ON `{db}`.* TO 'leaky'@'%'")
    insert_services(mariadb, db, [service("cmp1")])
    port, closed = mariadb.port, free_port()
    encoded = urllib.parse.quote(LEAKY, safe="")
    urls = [
        f"mysql+pymysql://leaky:{LEAKY}@127.0.0.1:{port}/{db}",  # raw: unparsable or a bad host
        f"mysql+pymysql://leaky:{encoded}x@127.0.0.1:{port}/{db}",  # encoded, wrong
        f"mysql+pymysql://leaky:{encoded}@127.0.0.1:{closed}/{db}",  # encoded, nothing there
        f"mysql+pymysql://leaky:{LEAKY}@127.0.0.1:bad/{db}",  # bad port
        f"nosuch://leaky:{LEAKY}@127.0.0.1/{db}",  # unknown dialect
        f"mysql+nosuchdriver://leaky:{LEAKY}@127.0.0.1/{db}",
    ]  # missing driver
    channels = []
    for url in urls:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "openstack_service_exporter",
                "--database-connection",
                url,
                "--exporter-query_timeout",
                "2",
                "--exporter-log_level",
                "DEBUG",
                "list",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        channels += [result.stdout, result.stderr]
    # Literal cell URLs in cell_mappings, logged at every scrape.
    api = new_db("api")
    add_cell(mariadb, api, "raw", urls[0])
    add_cell(mariadb, api, "wrong", urls[1])
    add_cell(mariadb, api, "closed", urls[2])
    with exporter(tmp_path, ["--api_database-connection", mariadb.url(api), "--exporter-log_level", "DEBUG"]) as child:
        channels += [
            scrape(child.base),
            scrape(child.base, headers={"Accept-Encoding": "gzip"}),
            get(child.base + "/")[2].decode(),
        ]
    channels.append(child.output())
    joined = "\n".join(channels)
    assert not leaked(joined), leaked(joined)
    assert "Access denied" in joined and "***" in joined  # the failures were real
