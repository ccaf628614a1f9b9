"""Cinder as a source: cinder-api's rule on a real MariaDB, its configuration, and its series."""

from __future__ import annotations

import datetime
import uuid as uuidlib

import pytest
from cloud import T
from freezegun import freeze_time
from helpers import list_json, run_cli, samples, seconds, to_us
from mariadb import PASSWORD

from openstack_service_exporter.collector import families
from openstack_service_exporter.config import Settings
from openstack_service_exporter.exposition import exposition, render
from openstack_service_exporter.reader import Reader
from openstack_service_exporter.sources.cinder import CinderConfig


def service(host, binary="cinder-volume", **extra) -> dict:
    row = {
        "created_at": T - datetime.timedelta(days=1),
        "updated_at": T,
        "deleted": 0,
        "host": host,
        "binary": binary,
        "topic": binary,
        "report_count": 3,
        "disabled": 0,
        "availability_zone": "nova",
        "disabled_reason": None,
        "replication_status": "not-capable",
        "active_backend_id": None,
        "frozen": 0,
        "cluster_name": None,
        "uuid": str(uuidlib.uuid4()),
        "modified_at": None,
    }
    row.update(extra)
    return row


def insert(mariadb, database: str, rows: list[dict]) -> None:
    mariadb.insert(database, "services", rows)


@pytest.fixture
def cinder_db(mariadb, new_db):
    return new_db("cinder")


def cinder_conf(tmp_path, url: str, down_time: int | None = None) -> str:
    path = tmp_path / "cinder.conf"
    path.write_text(
        ("[DEFAULT]\n" + (f"service_down_time = {down_time}\n" if down_time is not None else ""))
        + f"[database]\nconnection = {url}\n"
    )
    return str(path)


def test_cinder_api_rule_at_the_threshold_in_the_future_and_without_updated_at(mariadb, cinder_db, tmp_path):
    mariadb.insert(
        cinder_db,
        "services",
        [
            service("at@lvm", updated_at=T - seconds(45)),  # exactly the down time: up (inclusive)
            service("past@lvm", updated_at=T - seconds(46)),  # one second more: down
            service("ahead@lvm", updated_at=T + seconds(45)),  # abs(): up while at most the down time ahead
            service("far-ahead@lvm", updated_at=T + seconds(46)),  # down, where Service.is_up says up
            service("created@lvm", updated_at=None, created_at=T - seconds(10)),  # created_at fallback: up
            service("never@lvm", updated_at=None, created_at=None),  # cinder-api fails on it; down here
            service("disabled", "cinder-scheduler", disabled=1, disabled_reason="maintenance"),
            service("deleted@lvm", deleted=1),
            service("null-deleted@lvm", deleted=None),  # not listed
        ],
    )
    conf = cinder_conf(tmp_path, mariadb.url(cinder_db), down_time=45)
    with freeze_time(T):
        records = {r["host"]: r for r in list_json(["--config-file", "/dev/null", "--cinder-config_file", conf])}
    assert {h: r["state"] for h, r in records.items()} == {
        "at@lvm": "up",
        "past@lvm": "down",
        "ahead@lvm": "up",
        "far-ahead@lvm": "down",
        "created@lvm": "up",
        "never@lvm": "down",
        "disabled": "up",
    }
    assert records["disabled"]["status"] == "disabled" and records["disabled"]["disabled_reason"] == "maintenance"
    assert records["ahead@lvm"]["heartbeat_age_seconds"] == -45.0
    assert records["never@lvm"]["heartbeat_age_seconds"] is None
    assert {r["project"] for r in records.values()} == {"cinder"} and {r["cell"] for r in records.values()} == {""}


def test_no_report_interval_override(mariadb, cinder_db, tmp_path):
    """A down time not above report_interval stays as it is: only the volume, scheduler and backup
    processes replace it (cinder/service.py), never cinder-api."""
    mariadb.insert(cinder_db, "services", [service("h@b", updated_at=T - seconds(6))])
    conf = tmp_path / "cinder.conf"
    conf.write_text(
        f"[DEFAULT]\nservice_down_time = 5\nreport_interval = 10\n[database]\nconnection = {mariadb.url(cinder_db)}\n"
    )
    with freeze_time(T):
        (record,) = list_json(["--config-file", "/dev/null", "--cinder-config_file", str(conf)])
    assert record["state"] == "down"


def test_duplicate_backends_show_the_newest_heartbeat_and_are_counted(mariadb, cinder_db, tmp_path):
    mariadb.insert(
        cinder_db,
        "services",
        [
            service("ha@ceph", updated_at=T - seconds(600), uuid="old"),
            service("ha@ceph", updated_at=T - seconds(5), uuid="new"),
            service("ha@ceph", updated_at=T - seconds(300), uuid="middle"),
            service("tie@ceph", updated_at=T, uuid="first"),
            service("tie@ceph", updated_at=T, uuid="second"),
        ],
    )
    settings = Settings(sources=(CinderConfig(mariadb.url(cinder_db)),))
    reader = Reader(settings, clock=lambda: to_us(T))
    try:
        snapshot = reader.read()
    finally:
        reader.close()
    got = samples(render(families(snapshot, settings, to_us(T), "pymysql")).decode())
    info = {dict(k[1])["host"]: dict(k[1]) for k in got if k[0] == "service_info"}
    assert info["ha@ceph"]["uuid"] == "new" and info["tie@ceph"]["uuid"] == "second"  # a tie: the higher id
    assert got[("service_exporter_duplicate_rows", frozenset({("project", "cinder"), ("cell", "")}))] == 3.0
    assert got[("service_down_time_seconds", frozenset({("project", "cinder")}))] == 60.0


def test_series_and_info_labels(mariadb, cinder_db):
    mariadb.insert(
        cinder_db,
        "services",
        [
            service(
                "st@lvm",
                availability_zone="az-9",
                cluster_name="c1@lvm",
                frozen=1,
                replication_status="enabled",
                active_backend_id="b2",
                report_count=42,
                uuid="u-1",
                disabled=1,
                disabled_reason='quote " in',
            )
        ],
    )
    settings = Settings(sources=(CinderConfig(mariadb.url(cinder_db)),))
    reader = Reader(settings, clock=lambda: to_us(T))
    try:
        snapshot = reader.read()
    finally:
        reader.close()
    text = render(families(snapshot, settings, to_us(T), "pymysql")).decode()
    assert b"".join(exposition(snapshot, settings, to_us(T), "pymysql")).decode() == text
    base = {("project", "cinder"), ("cell", ""), ("binary", "cinder-volume"), ("host", "st@lvm"), ("zone", "az-9")}
    got = samples(text)
    assert got[("service_up", frozenset(base))] == 1.0
    assert got[("service_disabled", frozenset(base))] == 1.0
    assert got[("service_reports_total", frozenset(base))] == 42.0
    assert ("service_forced_down", frozenset(base)) not in got  # Cinder has no such column
    assert (
        got[
            (
                "service_info",
                frozenset(
                    base
                    | {
                        ("cluster", "c1@lvm"),
                        ("uuid", "u-1"),
                        ("frozen", "true"),
                        ("replication_status", "enabled"),
                        ("active_backend_id", "b2"),
                        ("disabled_reason", 'quote " in'),
                    }
                ),
            )
        ]
        == 1.0
    )
    assert got[("service_exporter_database_up", frozenset({("project", "cinder"), ("cell", "")}))] == 1.0


def test_a_project_filter_and_a_table(mariadb, cinder_db, tmp_path):
    mariadb.insert(cinder_db, "services", [service("st@lvm")])
    conf = cinder_conf(tmp_path, mariadb.url(cinder_db))
    with freeze_time(T):
        code, out, err = run_cli(
            ["--config-file", "/dev/null", "--cinder-config_file", conf, "list", "--project", "cinder"]
        )
    assert code == 0, err
    assert out.splitlines()[1].split()[:6] == ["cinder", "cinder-volume", "st@lvm", "nova", "enabled", ":-)"]
    code, _, err = run_cli(["--config-file", "/dev/null", "--cinder-config_file", conf, "list", "--project", "nova"])
    assert code == 2 and "--project nova: that project is not configured" in err


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "cinder: [cinder] config_file"),  # the file is missing
        ("[DEFAULT]\nservice_down_time = 60\n", "cinder: [database] connection is not set"),
        ("[DEFAULT]\nservice_down_time = soon\n[database]\nconnection = sqlite://\n", "invalid value"),
        ("no section header\n", "cinder: [cinder] config_file"),
    ],
)
def test_bad_cinder_configuration_is_one_line(tmp_path, content, expected):
    path = tmp_path / "cinder.conf"
    if content is not None:
        path.write_text(content)
    code, out, err = run_cli(["--config-file", "/dev/null", "--cinder-config_file", str(path), "list"])
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "cinder" in err and out == ""


def test_cinder_database_down_is_data(tmp_path, mariadb):
    conf = cinder_conf(tmp_path, mariadb.url("no_such_database"))
    code, out, err = run_cli(["--config-file", "/dev/null", "--cinder-config_file", conf, "list", "--format", "json"])
    assert code == 1 and out.strip() == "[]"
    assert "cinder database" in err and "no_such_database" in err and PASSWORD not in err
