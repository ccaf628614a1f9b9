"""Concurrent scrapes, min_interval, Prometheus' scrape timeout, TLS and basic auth, and no leaked secret."""

from __future__ import annotations

import base64
import http.client
import logging
import ssl
import subprocess
import threading
import time

import bcrypt
import pytest
from cloud import T, add_cell, insert_services, service
from helpers import (
    free_port,
    get,
    nova_settings,
    run_cli,
    samples,
    scrape,
    series,
    served,
    start_exporter,
    stop_exporter,
    to_us,
)
from mariadb import PASSWORD
from pki import Pki, make_pki
from promserver import wait_for

from openstack_service_exporter.http import WORKERS
from openstack_service_exporter.webconfig import load_web_config


def com_select(mariadb) -> int:
    return int(mariadb.execute("SHOW GLOBAL STATUS LIKE 'Com_select'")[0][1])


@pytest.fixture
def cloud(mariadb, new_db):
    api, cell1, cell2 = new_db("api"), new_db("services"), new_db("services")
    add_cell(mariadb, api, "cell1", mariadb.url(cell1))
    add_cell(mariadb, api, "cell2", mariadb.url(cell2))
    insert_services(mariadb, cell1, [service(f"cmp{i}") for i in range(20)])
    insert_services(mariadb, cell2, [service(f"cmp{i}") for i in range(20, 30)])
    return nova_settings(api_database_connection=mariadb.url(api), database_connection=mariadb.url(cell1))


def test_concurrent_scrapes_share_one_database_round(mariadb, cloud):
    with served(cloud, clock=lambda: to_us(T), share_recent=True) as (base, shared):
        scrape(base)  # warm up: connections, column detection
        readings_before = shared.readings
        # Hold the API database's table lock so that the next reading stays in flight while all scrapes arrive.
        results, errors = [], []

        def one():
            try:
                results.append(series(scrape(base), "service_up"))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        admin = mariadb.admin(cloud.sources[0].api_database_connection.rsplit("/", 1)[1].split("?")[0])
        with admin.cursor() as cur:
            cur.execute("LOCK TABLES cell_mappings WRITE")
            threads = [threading.Thread(target=one) for _ in range(10)]
            for t in threads:
                t.start()
            time.sleep(1.0)
            cur.execute("UNLOCK TABLES")
        admin.close()
        for t in threads:
            t.join(30)
    assert not errors and len(results) == 10
    assert all(r == results[0] and len(r) == 30 for r in results)
    # Ten scrapes, at most one database round: the one they all waited for (none at all when the
    # first of them came within the warm-up reading's own duration and shared that).
    assert shared.readings - readings_before <= 1


def _status(admin, *names: str) -> dict[str, int]:
    with admin.cursor() as cur:
        cur.execute(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({','.join(['%s'] * len(names))})", names)
        return {k: int(v) for k, v in cur.fetchall()}


def test_a_reading_sends_its_selects_and_nothing_else(mariadb, cloud):
    """Per database one SELECT of the clock and one of the rows (the API database: mappings and
    zones); no transaction statement, on connections in autocommit."""
    from openstack_service_exporter.reader import Reader

    reader = Reader(cloud)
    admin = mariadb.admin()  # opened before: its own connection's SET statements are not counted
    try:
        reader.read()  # connections, column detection
        names = ("Com_select", "Com_rollback", "Com_commit", "Com_begin", "Com_set_option")
        before = _status(admin, *names)
        snapshot = reader.read()
        after = _status(admin, *names)
    finally:
        reader.close()
        admin.close()
    assert snapshot.ok and len(snapshot.readings[0].rows) == 30
    spent = {k: after[k] - before[k] for k in names}
    assert spent == {
        "Com_select": 2 * 2 + 2,
        "Com_rollback": 0,
        "Com_commit": 0,
        "Com_begin": 0,
        "Com_set_option": 0,
    }, spent


def test_pooled_connections_are_in_autocommit_and_a_failed_one_is_dropped(mariadb, cloud):
    from openstack_service_exporter.engines import dbapi_connection, make_engine
    from openstack_service_exporter.sources.nova.tables import fetch_all

    engine = make_engine(cloud.sources[0].database_connection, 5)

    def session_id(conn) -> int:
        return fetch_all(conn, "SELECT CONNECTION_ID()")[0][0]

    try:
        with dbapi_connection(engine) as conn:
            assert list(fetch_all(conn, "SELECT @@autocommit")) == [(1,)]
            first = session_id(conn)
        with pytest.raises(ZeroDivisionError), dbapi_connection(engine) as conn:
            assert session_id(conn) == first  # pooled
            _ = 1 / 0  # e.g. a read timeout in the middle of a result
        with dbapi_connection(engine) as conn:
            assert session_id(conn) != first  # the failed one was thrown away, not pooled
    finally:
        engine.dispose()


def test_pymysql_reads_what_mysqlclient_reads(monkeypatch, cloud):
    """PyMySQL is the default dependency; mysqlclient, when installed, is taken for the same URLs."""
    from openstack_service_exporter import engines
    from openstack_service_exporter.reader import Reader

    def reading():
        reader = Reader(cloud)
        try:
            snapshot = reader.read()
            return {url: engine.driver for url, engine in reader.engines._engines.items()}, snapshot
        finally:
            reader.close()

    drivers, fast = reading()
    monkeypatch.setattr(engines, "have_mysqlclient", lambda: False)
    pure_drivers, pure = reading()
    assert set(pure_drivers.values()) == {"pymysql"} and set(drivers.values()) == {"mysqldb"}
    (pure_nova,), (fast_nova,) = pure.readings, fast.readings
    assert pure.ok and len(pure_nova.rows) == 30 and pure_nova.rows == fast_nova.rows
    assert pure_nova.context.host_zones == fast_nova.context.host_zones


def test_pymysql_connections_share_one_tls_context_made_as_pymysql_makes_it(monkeypatch, cloud):
    import pymysql

    from openstack_service_exporter import engines

    monkeypatch.setattr(engines, "have_mysqlclient", lambda: False)
    engine = engines.make_engine(cloud.sources[0].database_connection, 5)
    try:
        with engines.dbapi_connection(engine) as one, engines.dbapi_connection(engine) as two:
            first, second = one.dbapi_connection, two.dbapi_connection
            assert isinstance(first, pymysql.connections.Connection) and first is not second
            assert first.ctx is second.ctx
            assert first.ssl and not first._ssl_required  # PyMySQL's default: TLS when offered
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        own = pymysql.connect(*cargs, **cparams)  # PyMySQL's own, for comparison
        try:
            assert own.ctx is not first.ctx and own.ssl and not own._ssl_required
            for attribute in ("verify_mode", "check_hostname", "verify_flags", "minimum_version", "options"):
                assert getattr(first.ctx, attribute) == getattr(own.ctx, attribute), attribute
        finally:
            own.close()
    finally:
        engine.dispose()


def test_cells_are_read_while_the_zones_are(mariadb, new_db, cloud):
    """The cells start as soon as the API database has given the cell mappings: with the zones'
    table locked, a cell added since the last reading is read all the same, while the zones fall
    back to the last known."""
    from openstack_service_exporter.reader import Reader

    reader = Reader(cloud)
    api = cloud.sources[0].api_database_connection.rsplit("/", 1)[1].split("?")[0]
    try:
        assert reader.read().readings[0].context.zones_known
        cell3 = new_db("services")
        add_cell(mariadb, api, "cell3", mariadb.url(cell3))
        insert_services(mariadb, cell3, [service(f"new{i}") for i in range(5)])
        admin = mariadb.admin(api)
        with admin.cursor() as cur:
            cur.execute("LOCK TABLES aggregate_hosts WRITE")
            try:
                started = time.monotonic()
                snapshot = reader.read(timeout=2)
                took = time.monotonic() - started
            finally:
                cur.execute("UNLOCK TABLES")
        admin.close()
    finally:
        reader.close()
    (nova,) = snapshot.readings
    *cells, api = nova.databases
    assert [c.cell for c in cells] == ["cell1", "cell2", "cell3"] and all(c.up for c in cells)
    assert len(nova.rows) == 35
    assert not api.up and not nova.context.zones_known and api.error == "no answer in time"
    assert took < 2


def test_min_interval_reuses_a_reading_and_says_so(mariadb, cloud):
    clock = [to_us(T)]
    with served(cloud, clock=lambda: clock[0], min_interval=60) as (base, shared):
        scrape(base)
        before = com_select(mariadb)
        clock[0] += 5_000_000
        text = scrape(base)
        assert com_select(mariadb) - before <= 1  # only SHOW STATUS itself
        assert shared.readings == 1
        assert samples(text)[("service_exporter_snapshot_age_seconds", frozenset())] == 5.0


def test_scrape_timeout_header_answers_in_time_with_what_it_has(mariadb, cloud):
    import socket

    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(8)
    api = cloud.sources[0].api_database_connection.rsplit("/", 1)[1].split("?")[0]
    add_cell(mariadb, api, "hung", f"mysql+pymysql://nova:x@127.0.0.1:{sink.getsockname()[1]}/nova")
    try:
        with served(
            nova_settings(api_database_connection=cloud.sources[0].api_database_connection, query_timeout=30),
            clock=lambda: to_us(T),
        ) as (base, _):
            started = time.monotonic()
            text = scrape(base, headers={"X-Prometheus-Scrape-Timeout-Seconds": "3"})
            took = time.monotonic() - started
    finally:
        sink.close()
    assert took < 3.0
    health = {dict(k[1])["cell"]: v for k, v in samples(text).items() if k[0] == "service_exporter_database_up"}
    assert health == {"cell1": 1.0, "cell2": 1.0, "hung": 0.0, "(api_database)": 1.0}
    assert len(series(text, "service_up")) == 30


def test_thread_count_returns_to_normal_after_hung_server(mariadb, cloud):
    import socket

    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(8)
    url = f"mysql+pymysql://nova:x@127.0.0.1:{sink.getsockname()[1]}/nova"
    try:
        with served(nova_settings(database_connection=url, query_timeout=1), clock=lambda: to_us(T)) as (base, _):
            baseline = {t.name for t in threading.enumerate()}
            for _ in range(3):
                scrape(base)

            def back() -> bool:
                # the HTTP workers are a bounded pool whose threads stay; of the others, one reader
                # thread and the renderer's may stay, not one per blocked read
                extra = [t.name for t in threading.enumerate() if t.name not in baseline]
                workers = [name for name in extra if name.startswith("http-work")]
                return len(workers) <= WORKERS and len(extra) - len(workers) <= 2

            # the driver's own timeout (1 s) ends the blocked reads; their threads must not stay
            wait_for("the blocked reads' threads to end", back, 15)
    finally:
        sink.close()


# -- TLS and basic auth ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("certs"), "exporter")


def web_config(path, certs, users=None, client_auth=None) -> str:
    lines = ["tls_server_config:", f"  cert_file: {certs.server_cert}", f"  key_file: {certs.server_key}"]
    if client_auth:
        lines += [f"  client_ca_file: {certs.ca_cert}", f"  client_auth_type: {client_auth}"]
    if users:
        lines.append("basic_auth_users:")
        lines += [f"  {u}: '{bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode()}'" for u, p in users.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def auth(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_tls_and_basic_auth_with_real_clients(cloud, certs, tmp_path):
    web = load_web_config(web_config(tmp_path / "web.yml", certs, users={"prometheus": "pr0m-pass"}))
    client = ssl.create_default_context(cafile=str(certs.ca_cert))
    with served(cloud, clock=lambda: to_us(T), authorize=web.authorize, ssl_context=web.ssl_context) as (base, _):
        assert base.startswith("https://")
        assert get(base + "/metrics", context=client)[0] == 401
        assert get(base + "/metrics", headers=auth("prometheus", "wrong"), context=client)[0] == 401
        assert get(base + "/metrics", headers=auth("stranger", "pr0m-pass"), context=client)[0] == 401
        assert get(base + "/", context=client)[0] == 401  # the landing page is inventory too
        assert get(base + "/healthz", context=client)[:3:2] == (200, b"OK\n")  # probes carry no credentials
        assert len(series(scrape(base, headers=auth("prometheus", "pr0m-pass"), context=client), "service_up")) == 30
        # Plain HTTP to the TLS port gets nothing useful.
        status = None
        try:
            status = get(base.replace("https://", "http://") + "/metrics", timeout=5)[0]
        except (OSError, http.client.HTTPException):  # connection reset / bad status line: what we want
            pass
        assert status in (None, 400)
        # curl, a second real client, with the CA and credentials
        out = subprocess.run(
            ["curl", "-sS", "--cacert", str(certs.ca_cert), "-u", "prometheus:pr0m-pass", base + "/metrics"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "service_up{" in out.stdout


def test_client_certificate_required(cloud, certs, tmp_path):
    web = load_web_config(web_config(tmp_path / "web.yml", certs, client_auth="RequireAndVerifyClientCert"))
    with served(cloud, clock=lambda: to_us(T), authorize=web.authorize, ssl_context=web.ssl_context) as (base, _):
        without = ssl.create_default_context(cafile=str(certs.ca_cert))
        with pytest.raises(OSError):  # the handshake refused (SSLError, reset or URLError: all OSErrors)
            get(base + "/metrics", context=without, timeout=5)
        with_cert = ssl.create_default_context(cafile=str(certs.ca_cert))
        with_cert.load_cert_chain(str(certs.client_cert), str(certs.client_key))
        assert get(base + "/metrics", context=with_cert)[0] == 200


@pytest.mark.parametrize(
    "content,expected",
    [
        ("tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n", "does not exist"),
        ("basic_auth_users:\n  a: plaintext\n", "not a bcrypt hash"),
        ("unknown_key: 1\n", "unknown keys"),
        ("- a list\n", "mapping"),
        ("tls_server_config: {cert_file: a\n", "web config file"),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
            "not supported by this exporter",
        ),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  max_version: TLS99\n", "max_version must be one of"),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  prefer_server_cipher_suites: maybe\n",
            "must be true or false",
        ),
    ],
)
def test_bad_web_config_is_a_startup_error(tmp_path, content, expected):
    path = tmp_path / "web.yml"
    path.write_text(content)
    code, _, err = run_cli(["--database-connection", "sqlite://", "--exporter-web_config_file", str(path), "serve"])
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1


def test_tls_versions_of_the_web_config_are_applied(certs, tmp_path):
    path = tmp_path / "web.yml"
    web_config(path, certs)
    path.write_text(path.read_text() + "  min_version: TLS12\n  max_version: TLS12\n")
    context = load_web_config(str(path)).ssl_context
    assert (context.minimum_version, context.maximum_version) == (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)


# -- secrets ---------------------------------------------------------------------------------


def test_password_never_leaks(mariadb, new_db, tmp_path, caplog):
    """Make every kind of error happen and grep every output channel for the password."""
    caplog.set_level(logging.DEBUG)
    db = new_db("services")
    insert_services(mariadb, db, [service("cmp1", disabled_reason="AUTO: x")])
    good = mariadb.url(db)
    wrong_password = mariadb.url(db, password=PASSWORD + "x")
    closed_port = f"mysql+pymysql://nova:{PASSWORD}@127.0.0.1:{free_port()}/{db}"
    unparsable = f"mysql+pymysql://nova:{PASSWORD}@127.0.0.1:bad/{db}"
    unknown_driver = f"nosuch://nova:{PASSWORD}@127.0.0.1/{db}"
    no_table = mariadb.url(new_db("api"))
    channels = []
    for url in (good, wrong_password, closed_port, unparsable, unknown_driver, no_table):
        for fmt in ("table", "json"):
            code, out, err = run_cli(
                [
                    "--database-connection",
                    url,
                    "--exporter-query_timeout",
                    "2",
                    "--exporter-log_level",
                    "DEBUG",
                    "list",
                    "--format",
                    fmt,
                ]
            )
            channels += [out, err]
    api = new_db("api")
    add_cell(mariadb, api, "templated", "{scheme}://{username}:{password}@{hostname}:{port}/nosuchdb")
    add_cell(mariadb, api, "wrongpw", wrong_password)
    port = free_port()
    proc = start_exporter(
        [
            "--api_database-connection",
            mariadb.url(api),
            "--database-connection",
            good,
            "--exporter-listen_address",
            f"127.0.0.1:{port}",
            "--exporter-log_level",
            "DEBUG",
        ],
        port,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        channels += [scrape(base), get(base + "/")[2].decode(), get(base + "/nothing")[2].decode()]
    finally:
        code, out, err = stop_exporter(proc)
    channels += [out, err, caplog.text]
    for text in channels:
        assert PASSWORD not in text
    # The failures were real (otherwise this test proves nothing).
    joined = "\n".join(channels)
    assert "Access denied" in joined and "Can't connect" in joined and "***" in joined


def test_hung_real_server_then_back(mariadb, cloud):
    """A MariaDB that stops answering on its established connections (SIGSTOP), then comes back."""
    settings = nova_settings(api_database_connection=cloud.sources[0].api_database_connection, query_timeout=1)
    with served(settings, clock=lambda: to_us(T)) as (base, _):
        assert len(series(scrape(base), "service_up")) == 30
        mariadb.pause()
        try:
            started = time.monotonic()
            text = scrape(base)
            took = time.monotonic() - started
        finally:
            mariadb.resume()
        assert took < 2 * 1 + 1.0
        assert (
            samples(text)[
                ("service_exporter_database_up", frozenset({("project", "nova"), ("cell", "(api_database)")}))
            ]
            == 0.0
        )

        # The reads cut off by the deadline end on their own socket timeouts (1 s); then all is back.
        def back() -> str | None:
            text = scrape(base)
            health = {dict(k[1])["cell"]: v for k, v in samples(text).items() if k[0] == "service_exporter_database_up"}
            return text if health == {"cell1": 1.0, "cell2": 1.0, "(api_database)": 1.0} else None

        assert len(series(wait_for("every database up again", back, 15), "service_up")) == 30


def test_a_scrape_just_after_a_reading_shares_it(mariadb, cloud):
    with served(cloud, clock=lambda: to_us(T), share_recent=True) as (base, shared):
        scrape(base)
        shared._last_duration = 5.0  # as if the reading had taken 5 s: the next scrape, right after, shares it
        scrape(base)
        assert shared.readings == 1
        shared._last_duration = 0.0
        scrape(base)
        assert shared.readings == 2
