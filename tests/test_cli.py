"""The command line end to end: serve, list, demo, nova.conf layering, and a clear error for each bad input."""

from __future__ import annotations

import os
import textwrap
import time

import pytest
from cloud import insert_services, service
from helpers import free_port, get, run_cli, samples, scrape, series, start_exporter, stop_exporter
from mariadb import PASSWORD

from openstack_service_exporter.sources import SOURCES


@pytest.fixture
def cell(mariadb, new_db):
    db = new_db("services")
    insert_services(mariadb, db, [service("cmp1"), service("ctl1", "nova-conductor")])
    return mariadb.url(db)


def write(path, text: str):
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_serve_subprocess_metrics_landing_page_and_clean_stop(cell, tmp_path):
    port = free_port()
    nova_conf = write(
        tmp_path / "nova.conf",
        f"""
        [DEFAULT]
        service_down_time = 120
        [database]
        connection = {cell}
        """,
    )
    exporter_conf = write(
        tmp_path / "exporter.conf",
        f"""
        [exporter]
        listen_address = 127.0.0.1:{port}
        metric_prefix = openstack_nova_
        """,
    )
    proc = start_exporter(["--config-file", nova_conf, "--config-file", exporter_conf], port)  # serve is the default
    try:
        base = f"http://127.0.0.1:{port}"
        text = scrape(base, headers={"Accept-Encoding": "gzip"})
        got = samples(text)
        assert got[("openstack_nova_service_down_time_seconds", frozenset({("project", "nova")}))] == 120.0
        assert set(series(text, "openstack_nova_service_up")) == {
            ("", "nova-compute", "cmp1"),
            ("", "nova-conductor", "ctl1"),
        }
        names = {name for name, _ in got}
        assert {
            "openstack_nova_service_reports_total",
            "openstack_nova_service_info",
            "openstack_nova_service_exporter_build_info",
        } <= names
        status, headers, body = get(base + "/")
        assert status == 200 and b'href="/metrics"' in body and headers["Content-Type"].startswith("text/html")
        assert get(base + "/nope")[0] == 404
        import socket
        import urllib.request

        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:  # clients hide a HEAD's body
            raw.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
            answer = b"".join(iter(lambda: raw.recv(65536), b""))
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200") and b"Content-Length: " in head and body == b""
        post = urllib.request.Request(base + "/metrics", data=b"x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(post, timeout=30)
        assert refused.value.code == 405
    finally:
        code, _, err = stop_exporter(proc)
    assert code == 0, err
    assert PASSWORD not in err


def test_config_dir_and_later_files_win(cell, tmp_path):
    (tmp_path / "conf.d").mkdir()
    nova_conf = write(tmp_path / "nova.conf", f"[DEFAULT]\nservice_down_time = 30\n[database]\nconnection = {cell}\n")
    write(tmp_path / "conf.d" / "10-down.conf", "[DEFAULT]\nservice_down_time = 45\n")
    code, out, err = run_cli(
        ["--config-file", nova_conf, "--config-dir", str(tmp_path / "conf.d"), "list", "--format", "json"]
    )
    assert code == 0, err
    from openstack_service_exporter import config

    conf = config.new_config(SOURCES)
    config.parse(conf, ["--config-file", nova_conf, "--config-dir", str(tmp_path / "conf.d")], SOURCES)
    assert config.settings_from(conf, SOURCES).sources[0].service_down_time == 45


def test_list_filters(cell):
    code, out, _ = run_cli(["--database-connection", cell, "list", "--host", "ctl1", "--format", "json"])
    import json

    assert code == 0 and [r["binary"] for r in json.loads(out)] == ["nova-conductor"]
    code, out, _ = run_cli(["--database-connection", cell, "list", "--binary", "nova-compute"])
    assert code == 0 and len(out.splitlines()) == 2


def test_serve_starts_with_database_down_and_recovers(mariadb, cell):
    port = free_port()
    proc = start_exporter(
        [
            "--database-connection",
            cell,
            "--exporter-listen_address",
            f"127.0.0.1:{port}",
            "--exporter-query_timeout",
            "2",
        ],
        port,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert series(scrape(base), "service_up")
        mariadb.stop()
        try:
            text = scrape(base)
        finally:
            mariadb.start()
        assert samples(text)[("service_exporter_database_up", frozenset({("project", "nova"), ("cell", "")}))] == 0.0
        assert series(text, "service_up") == {}  # no stale series
        # After the restart the pooled connections are dead; the next scrape reconnects by itself.
        text = scrape(base)
        assert samples(text)[("service_exporter_database_up", frozenset({("project", "nova"), ("cell", "")}))] == 1.0
        assert len(series(text, "service_up")) == 2
    finally:
        code, _, err = stop_exporter(proc)
    assert code == 0 and PASSWORD not in err


def test_list_with_database_down_is_one_line_error(tmp_path):
    url = f"mysql+pymysql://nova:{PASSWORD}@127.0.0.1:{free_port()}/nova"
    code, out, err = run_cli(["--database-connection", url, "--exporter-query_timeout", "2", "list"])
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "database" in err and PASSWORD not in err + out


def test_demo_shows_services_going_down_and_up():
    port = free_port()
    proc = start_exporter(
        [
            "--exporter-listen_address",
            f"127.0.0.1:{port}",
            "demo",
            "--period",
            "8",
            "--report-interval",
            "0.5",
            "--service-down-time",
            "2",
        ],
        port,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        first = series(scrape(base), "service_up")
        assert first[("cell1", "nova-compute", "cmp-az1-02")] == 0.0  # dead in the first half
        assert first[("cell1", "nova-compute", "cmp-az1-03")] == 0.0  # forced down
        assert first[("cell1", "nova-compute", "cmp-az2-01")] == 1.0  # disabled, still up
        assert ("cell0", "nova-osapi_compute", "ctl-01") not in first
        text = scrape(base)
        nova = [
            dict(k[1])
            for k in samples(text)
            if k[0].startswith("service_") and "host" in dict(k[1]) and dict(k[1]).get("project") == "nova"
        ]
        assert {labels["zone"] for labels in nova} == {"az1", "az2", "nova", "internal"}
        reasons = {labels["host"]: labels["disabled_reason"] for labels in nova if "disabled_reason" in labels}
        projects = {dict(k[1])["project"] for k in samples(text) if k[0] == "service_up"}
        assert projects == {"nova", "cinder", "neutron", "ironic"}
        assert reasons["cmp-az2-01"].startswith("AUTO: ") and reasons["cmp-az2-02"] == ""
        deadline, seen_up = time.monotonic() + 20, False
        while time.monotonic() < deadline and not seen_up:
            time.sleep(0.5)
            seen_up = series(scrape(base), "service_up")[("cell1", "nova-compute", "cmp-az1-02")] == 1.0
        assert seen_up, "cmp-az1-02 never came back"
        deadline, seen_down = time.monotonic() + 20, False
        while time.monotonic() < deadline and not seen_down:
            time.sleep(0.5)
            up = series(scrape(base), "service_up")
            seen_down = (
                up[("cell1", "nova-compute", "cmp-az2-03")] == 0.0 and up[("", "cinder-volume", "st-01@ceph")] == 0.0
            )
        assert seen_down, "cmp-az2-03 and Cinder's st-01@ceph never went down"
    finally:
        code, _, err = stop_exporter(proc)
    assert code == 0, err


def test_demo_with_ovn_serves_the_ovn_agents_from_ovn_databases():
    """With OVN's server installed the demo runs ML2/OVN's agents in private OVN databases: a gateway
    with its zones, a metadata agent down with its dead controller, a controller that dies and returns."""
    from ovsdb_server import ensure_installed

    ensure_installed()
    port = free_port()
    args = ["--exporter-listen_address", f"127.0.0.1:{port}", "demo", "--period", "8", "--report-interval", "0.5"]
    proc = start_exporter([*args, "--service-down-time", "2"], port)
    base = f"http://127.0.0.1:{port}"
    try:
        got = samples(scrape(base))
        up = {
            (labels["binary"], labels["host"], labels["zone"]): value
            for labels, value in ((dict(k[1]), v) for k, v in got.items() if k[0] == "service_up")
            if labels["project"] == "neutron" and labels["host"].startswith("ovn-")
        }
        assert {key: up[key] for key in up if key[1] != "ovn-cmp-01"} == {
            ("ovn-controller", "ovn-gw-01", "az1,az2"): 1.0,
            ("ovn-controller", "ovn-cmp-02", ""): 1.0,  # one ping behind: alive
            ("neutron-ovn-metadata-agent", "ovn-cmp-02", ""): 1.0,
            ("ovn-controller", "ovn-cmp-03", ""): 0.0,
            ("neutron-ovn-metadata-agent", "ovn-cmp-03", ""): 0.0,  # it beats, its controller does not
        }
        assert {key[0] for key in up if key[1] == "ovn-cmp-01"} == {"ovn-controller", "neutron-ovn-metadata-agent"}
        types = {
            dict(k[1])["host"]: dict(k[1])["agent_type"]
            for k in got
            if k[0] == "service_info" and dict(k[1])["host"] == "ovn-gw-01"
        }
        assert types == {"ovn-gw-01": "OVN Controller Gateway agent"}
        for cell in ("(ovn_nb)", "(ovn_sb)"):
            assert got[("service_exporter_database_up", frozenset({("project", "neutron"), ("cell", cell)}))] == 1.0
        assert got[("service_exporter_source_partial", frozenset({("project", "neutron"), ("reason", "ovn")}))] == 0.0
        seen = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and seen != {0.0, 1.0}:
            time.sleep(0.5)
            seen.add(series(scrape(base), "service_up")[("", "neutron-ovn-metadata-agent", "ovn-cmp-01")])
        assert seen == {0.0, 1.0}, "ovn-cmp-01's agents never went down and came back"
    finally:
        code, _, err = stop_exporter(proc)
    assert code == 0, err
    assert "OVN's databases" in err and "the OVN part of the demo is off" not in err


BAD_INPUTS = [
    (["--config-file", "/nonexistent/nova.conf", "list"], "nova.conf"),
    (["list"], "nothing to read"),
    (["--database-connection", "nosuchdriver://u:SECRET@h/db", "list"], "nosuchdriver"),
    (["--database-connection", "mysql+pymysql://u:SECRET@h:notaport/db", "list"], "cannot be parsed"),
    # mc without [cache] enabled: Nova itself makes no memcached client (tests/test_nova_memcached.py reads one)
    (
        ["--database-connection", "mysql+pymysql://u:SECRET@h/db", "--servicegroup_driver", "mc", "list"],
        "[cache] enabled = true",
    ),
    (["--database-connection", "sqlite://", "--exporter-listen_address", "nonsense", "serve"], "listen_address"),
    (["--database-connection", "sqlite://", "--exporter-metric_prefix", "1bad-", "serve"], "metric_prefix"),
    (["--database-connection", "sqlite://", "--service_down_time", "abc", "list"], "service_down_time"),
    (["--database-connection", "sqlite://", "--exporter-web_config_file", "/nonexistent.yml", "serve"], "web config"),
]


@pytest.mark.parametrize("args,expected", BAD_INPUTS)
def test_bad_input_is_a_clear_error(args, expected, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # oslo's default search must not find a nova.conf of this machine
    code, _, err = run_cli(args)
    assert code == 2
    assert expected in err and "Traceback" not in err and "SECRET" not in err
    assert len(err.strip().splitlines()) == 1


def test_unreadable_config_file(tmp_path):
    if os.geteuid() == 0:
        # root reads any file: a directory where a file is expected is the unreadable case left to root
        path = tmp_path / "nova.conf"
        path.mkdir()
    else:
        path = tmp_path / "nova.conf"
        path.write_text("[DEFAULT]\n")
        path.chmod(0)
    code, _, err = run_cli(["--config-file", str(path), "list"])
    assert code == 2 and "nova.conf" in err


def test_not_a_nova_database(mariadb, new_db):
    db = new_db("api")  # no services table
    code, _, err = run_cli(["--database-connection", mariadb.url(db), "list"])
    assert code == 1 and "services" in err and PASSWORD not in err
