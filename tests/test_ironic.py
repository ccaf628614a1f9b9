"""Ironic as a source: ironic-api's conductor rule on a real MariaDB, its configuration, and its series."""

from __future__ import annotations

import datetime

import pytest
from cloud import T
from freezegun import freeze_time
from helpers import list_json, run_cli, samples, seconds, to_us
from mariadb import PASSWORD
from test_exposition import NASTY, NOW, assert_same, row, snapshot_of

from openstack_service_exporter.collector import families
from openstack_service_exporter.config import Settings
from openstack_service_exporter.exposition import render
from openstack_service_exporter.reader import Reader
from openstack_service_exporter.snapshot import DatabaseHealth, Reading, Snapshot
from openstack_service_exporter.sources.base import MICROS
from openstack_service_exporter.sources.cinder import CinderConfig, CinderRow
from openstack_service_exporter.sources.ironic import IronicConfig, IronicRow

KEYS = {
    "project",
    "cell",
    "binary",
    "host",
    "zone",
    "status",
    "state",
    "disabled_reason",
    "heartbeat_age_seconds",
    "id",
    "online",
    "conductor_group",
    "drivers",
    "updated_at",
    "created_at",
}


def conductor(id_: int, hostname: str, **extra) -> dict:
    row_ = {
        "id": id_,
        "hostname": hostname,
        "drivers": '["ipmi"]',
        "online": 1,
        "conductor_group": "",
        "created_at": T - datetime.timedelta(days=1),
        "updated_at": T,
        "version": "1.6",
    }
    row_.update(extra)
    return row_


@pytest.fixture
def ironic_db(mariadb, new_db):
    return new_db("ironic")


def ironic_conf(tmp_path, url: str, timeout: int | None = None) -> str:
    path = tmp_path / "ironic.conf"
    path.write_text(
        ("[conductor]\n" + (f"heartbeat_timeout = {timeout}\n" if timeout is not None else ""))
        + f"[database]\nconnection = {url}\n"
    )
    return str(path)


def listed(conf: str, now: datetime.datetime) -> dict[str, dict]:
    with freeze_time(now):
        records = list_json(["--config-file", "/dev/null", "--ironic-config_file", conf])
    return {r["host"]: r for r in records}


def test_alive_at_the_threshold_in_the_future_and_offline(mariadb, ironic_db, tmp_path):
    mariadb.insert(
        ironic_db,
        "conductors",
        [
            conductor(1, "at", updated_at=T - seconds(45)),  # exactly the timeout: alive (inclusive)
            conductor(2, "past", updated_at=T - seconds(46)),  # a second more: not
            conductor(3, "ahead", updated_at=T + seconds(3600)),  # no abs(): any future heartbeat is alive
            conductor(4, "year-9999", updated_at=datetime.datetime(9999, 12, 31, 23, 59, 59)),
            conductor(5, "stopped", online=0, updated_at=T - seconds(5)),  # a clean stop: down however fresh
            conductor(6, "null-online", online=None, updated_at=T),  # ironic-api fails; down here
            conductor(7, "never", updated_at=None),  # ironic-api fails; down, no age
            conductor(8, "epoch", updated_at=datetime.datetime(1970, 1, 1)),
        ],
    )
    conf = ironic_conf(tmp_path, mariadb.url(ironic_db), timeout=45)
    records = listed(conf, T)
    assert {h: r["state"] for h, r in records.items()} == {
        "at": "up",
        "past": "down",
        "ahead": "up",
        "year-9999": "up",
        "stopped": "down",
        "null-online": "down",
        "never": "down",
        "epoch": "down",
    }
    assert {h: r["online"] for h, r in records.items()} == {
        "at": True,
        "past": True,
        "ahead": True,
        "year-9999": True,
        "stopped": False,
        "null-online": False,
        "never": True,
        "epoch": True,
    }
    assert [r["id"] for r in records.values()] == list(range(1, 9))
    assert records["at"]["heartbeat_age_seconds"] == 45.0 and records["ahead"]["heartbeat_age_seconds"] == -3600.0
    assert (records["never"]["heartbeat_age_seconds"], records["never"]["updated_at"]) == (None, None)
    assert records["year-9999"]["updated_at"] == "9999-12-31T23:59:59Z"
    for r in records.values():
        assert set(r) == KEYS
        assert {k: r[k] for k in ("project", "cell", "binary", "zone", "status", "disabled_reason")} == {
            "project": "ironic",
            "cell": "",
            "binary": "ironic-conductor",
            "zone": "",
            "status": "enabled",
            "disabled_reason": None,
        }
    # Half a second later, the heartbeat exactly the timeout old is past it: updated_at has whole seconds.
    later = listed(conf, T + seconds(0.5))
    assert (later["at"]["state"], later["at"]["heartbeat_age_seconds"]) == ("down", 45.5)


@pytest.mark.parametrize(
    "timeout, alive",
    [
        (None, {"fresh", "60s", "now", "ahead-5s", "ahead-1h"}),  # Ironic's default, 60
        (0, {"now", "ahead-5s", "ahead-1h"}),  # no min: only a heartbeat not behind now
        (-5, {"ahead-5s", "ahead-1h"}),  # at least 5 s ahead
        (315576000, {"fresh", "60s", "61s", "now", "ahead-5s", "ahead-1h"}),  # the option's max, ten years
    ],
)
def test_heartbeat_timeout_as_ironic_reads_it(mariadb, ironic_db, tmp_path, timeout, alive):
    mariadb.insert(
        ironic_db,
        "conductors",
        [
            conductor(1, "fresh", updated_at=T - seconds(1)),
            conductor(2, "60s", updated_at=T - seconds(60)),
            conductor(3, "61s", updated_at=T - seconds(61)),
            conductor(4, "now", updated_at=T),
            conductor(5, "ahead-5s", updated_at=T + seconds(5)),
            conductor(6, "ahead-1h", updated_at=T + seconds(3600)),
        ],
    )
    records = listed(ironic_conf(tmp_path, mariadb.url(ironic_db), timeout), T)
    assert {h for h, r in records.items() if r["state"] == "up"} == alive


def test_groups_and_drivers(mariadb, ironic_db, tmp_path):
    mariadb.insert(
        ironic_db,
        "conductors",
        [
            conductor(1, "null", drivers=None, conductor_group="rack-1"),
            conductor(2, "json-null", drivers="null", conductor_group="g" * 255),
            conductor(3, "empty", drivers="[]"),
            conductor(4, "one", drivers='["ipmi"]', conductor_group="rack-2"),
            conductor(5, "several", drivers='["redfish", "ipmi", "fake-hardware"]'),  # order kept
            conductor(6, "numbers", drivers="[1, 2.5]"),  # items as Ironic's String field coerces them
            conductor(7, "not-json", drivers=""),  # ironic-api fails on the next three
            conductor(8, "object", drivers="{}"),
            conductor(9, "null-item", drivers='["ipmi", null]'),
        ],
    )
    conf = ironic_conf(tmp_path, mariadb.url(ironic_db))
    records = listed(conf, T)
    assert {h: r["drivers"] for h, r in records.items()} == {
        "null": [],
        "json-null": [],
        "empty": [],
        "one": ["ipmi"],
        "several": ["redfish", "ipmi", "fake-hardware"],
        "numbers": ["1", "2.5"],
        "not-json": [],
        "object": [],
        "null-item": [],
    }
    assert {h: r["conductor_group"] for h, r in records.items() if r["conductor_group"]} == {
        "null": "rack-1",
        "json-null": "g" * 255,
        "one": "rack-2",
    }
    assert {r["state"] for r in records.values()} == {"up"}  # drivers play no part in the verdict

    settings = Settings(sources=(IronicConfig(mariadb.url(ironic_db)),))
    got = samples(read_and_render(settings))
    info = {dict(k[1])["host"]: dict(k[1]) for k in got if k[0] == "service_info"}
    assert {h: (i["conductor_group"], i["drivers"]) for h, i in info.items()} == {
        "null": ("rack-1", ""),
        "json-null": ("g" * 255, ""),
        "empty": ("", ""),
        "one": ("rack-2", "ipmi"),
        "several": ("", "redfish,ipmi,fake-hardware"),
        "numbers": ("", "1,2.5"),
        "not-json": ("", ""),
        "object": ("", ""),
        "null-item": ("", ""),
    }
    # An unreadable drivers value is the row's business, not the database's.
    assert got[("service_exporter_database_up", frozenset({("project", "ironic"), ("cell", "")}))] == 1.0


def read_and_render(settings: Settings) -> str:
    reader = Reader(settings, clock=lambda: to_us(T))
    try:
        snapshot = reader.read()
    finally:
        reader.close()
    return render(families(snapshot, settings, to_us(T), "pymysql")).decode()


def test_series(mariadb, ironic_db):
    mariadb.insert(
        ironic_db,
        "conductors",
        [
            conductor(1, "alive", updated_at=T - seconds(10), conductor_group="rack-1", drivers='["ipmi", "redfish"]'),
            conductor(2, "stopped", online=0, updated_at=T - seconds(10)),
            conductor(3, "crashed", updated_at=T - seconds(600)),
            conductor(4, "never", updated_at=None, online=None),
        ],
    )
    settings = Settings(sources=(IronicConfig(mariadb.url(ironic_db), heartbeat_timeout=120),))
    got = samples(read_and_render(settings))

    def labels(host):
        return {("project", "ironic"), ("cell", ""), ("binary", "ironic-conductor"), ("host", host), ("zone", "")}

    def value(name, host):
        return got.get((name, frozenset(labels(host))))

    assert [value("service_up", h) for h in ("alive", "stopped", "crashed", "never")] == [1.0, 0.0, 0.0, 0.0]
    assert [value("service_online", h) for h in ("alive", "stopped", "crashed", "never")] == [1.0, 0.0, 1.0, 0.0]
    assert {value("service_disabled", h) for h in ("alive", "stopped", "crashed", "never")} == {0.0}
    assert value("service_last_seen_timestamp_seconds", "crashed") == to_us(T) / MICROS - 600
    assert value("service_heartbeat_age_seconds", "crashed") == 600.0
    assert value("service_last_seen_timestamp_seconds", "never") is None
    assert value("service_heartbeat_age_seconds", "never") is None
    assert value("service_reports_total", "alive") is None and value("service_forced_down", "alive") is None
    assert (
        got[("service_info", frozenset(labels("alive") | {("conductor_group", "rack-1"), ("drivers", "ipmi,redfish")}))]
        == 1.0
    )
    assert got[("service_down_time_seconds", frozenset({("project", "ironic")}))] == 120.0
    assert got[("service_exporter_database_up", frozenset({("project", "ironic"), ("cell", "")}))] == 1.0
    assert got[("service_exporter_duplicate_rows", frozenset({("project", "ironic"), ("cell", "")}))] == 0.0


def test_a_table_and_a_project_filter(mariadb, ironic_db, tmp_path):
    mariadb.insert(ironic_db, "conductors", [conductor(1, "cond-1", updated_at=T - seconds(3))])
    conf = ironic_conf(tmp_path, mariadb.url(ironic_db))
    with freeze_time(T):
        code, out, err = run_cli(
            ["--config-file", "/dev/null", "--ironic-config_file", conf, "list", "--project", "ironic"]
        )
    assert code == 0, err
    assert out.splitlines()[1].split() == [
        "ironic",
        "ironic-conductor",
        "cond-1",
        "enabled",
        ":-)",
        "2012-10-29",
        "13:42:08",
        "3s",
    ]


def test_a_database_without_conductors_is_down_as_data(mariadb, new_db, tmp_path):
    conf = ironic_conf(tmp_path, mariadb.url(new_db("cinder")))
    code, out, err = run_cli(["--config-file", "/dev/null", "--ironic-config_file", conf, "list", "--format", "json"])
    assert code == 1 and out.strip() == "[]"
    assert "ironic database" in err and "conductors" in err


def test_columns_as_the_table_has_them(mariadb, ironic_db, tmp_path):
    """A table from before conductor groups (Rocky) reads as the default group; one without a column
    the rule needs is a failed reading, said as such."""
    mariadb.insert(ironic_db, "conductors", [conductor(1, "old", conductor_group="rack-1")])
    mariadb.execute("ALTER TABLE conductors DROP COLUMN conductor_group", database=ironic_db)
    conf = ironic_conf(tmp_path, mariadb.url(ironic_db))
    assert [(r["conductor_group"], r["state"]) for r in listed(conf, T).values()] == [("", "up")]
    mariadb.execute("ALTER TABLE conductors DROP COLUMN online", database=ironic_db)
    code, out, err = run_cli(["--config-file", "/dev/null", "--ironic-config_file", conf, "list", "--format", "json"])
    assert code == 1 and out.strip() == "[]"
    assert "table conductors lacks online: not an Ironic database" in err


def test_ironic_database_down_is_data(tmp_path, mariadb):
    conf = ironic_conf(tmp_path, mariadb.url("no_such_database"))
    code, out, err = run_cli(["--config-file", "/dev/null", "--ironic-config_file", conf, "list", "--format", "json"])
    assert code == 1 and out.strip() == "[]"
    assert "ironic database" in err and "no_such_database" in err and PASSWORD not in err


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "ironic: [ironic] config_file"),  # the file is missing
        ("[conductor]\nheartbeat_timeout = 60\n", "ironic: [database] connection is not set"),
        ("[conductor]\nheartbeat_timeout = soon\n[database]\nconnection = sqlite://\n", "invalid value"),
        ("[conductor]\nheartbeat_timeout = 315576001\n[database]\nconnection = sqlite://\n", "invalid value"),
        ("no section header\n", "ironic: [ironic] config_file"),
    ],
)
def test_bad_ironic_configuration_is_one_line(tmp_path, content, expected):
    path = tmp_path / "ironic.conf"
    if content is not None:
        path.write_text(content)
    code, out, err = run_cli(["--config-file", "/dev/null", "--ironic-config_file", str(path), "list"])
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "ironic" in err and out == ""


def test_config_dir_and_later_files_win(mariadb, ironic_db, tmp_path):
    mariadb.insert(ironic_db, "conductors", [conductor(1, "c", updated_at=T - seconds(100))])
    first = ironic_conf(tmp_path, mariadb.url(ironic_db), timeout=50)
    second = tmp_path / "override.conf"
    second.write_text("[conductor]\nheartbeat_timeout = 99\n")
    directory = tmp_path / "ironic.conf.d"
    directory.mkdir()
    args = ["--ironic-config_file", first, "--ironic-config_file", str(second)]
    with freeze_time(T):
        assert [r["state"] for r in list_json(["--config-file", "/dev/null", *args])] == ["down"]
        (directory / "timeout.conf").write_text("[conductor]\nheartbeat_timeout = 100\n")
        assert [
            r["state"] for r in list_json(["--config-file", "/dev/null", *args, "--ironic-config_dir", str(directory)])
        ] == ["up"]


def test_the_fast_writer_with_ironic_rows():
    """Ironic's rows beside Nova's and Cinder's: byte for byte as prometheus_client writes them."""
    nova = snapshot_of([row(id_=i, host=NASTY[i]) for i in range(len(NASTY))])
    cinder = Reading(
        CinderConfig("sqlite://"),
        [
            CinderRow(
                1,
                "st@lvm",
                "cinder-volume",
                "cinder-volume",
                3,
                0,
                None,
                "nova",
                "u1",
                None,
                False,
                None,
                None,
                NOW - 86_400 * MICROS,
                NOW,
            )
        ],
        [DatabaseHealth("cinder", "", True, 0.01)],
    )
    ironic_rows = [
        IronicRow(
            i,
            NASTY[i] or f"c{i}",
            tuple(NASTY[:i]),
            i % 3 or None,
            NASTY[-i],
            None if i == 1 else NOW - 86_400 * MICROS,
            None if i == 2 else NOW - i * 7 * MICROS,
        )
        for i in range(len(NASTY))
    ]
    ironic = Reading(
        IronicConfig("sqlite://", heartbeat_timeout=20),
        ironic_rows,
        [DatabaseHealth("ironic", "", True, 0.02, skew=0.1)],
    )
    for prefix in ("", "os_"):
        text = assert_same(
            Snapshot(now=nova.now, readings=nova.readings + [cinder, ironic]), Settings(metric_prefix=prefix)
        ).decode()
        assert text.count(f"# TYPE {prefix}service_online gauge") == 1
        ironic_series = '{binary="ironic-conductor",cell="",'
        assert text.count(f"{prefix}service_online{ironic_series}") == len(NASTY)
        assert text.count(f"{prefix}service_up{ironic_series}") == len(NASTY)
        assert 'conductor_group="{braces}=,"' in text and 'drivers="quote \\" in,back\\\\slash"' in text
