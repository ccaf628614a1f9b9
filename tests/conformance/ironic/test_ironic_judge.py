"""The Ironic judge alone, on hand-made tables: it answers what Ironic's rule says, so that its
answers can be trusted as the reference of the comparison (and a broken judge is caught here, not
as a flood of differences there)."""

from __future__ import annotations

import datetime

import ironic_side
import pytest
from ironic_random import FAR_FUTURE, conductor

pytestmark = pytest.mark.conformance

NOW = datetime.datetime(2026, 3, 14, 15, 9, 26)
SECOND = datetime.timedelta(seconds=1)


def alive(deployment, judge, conf, rows, now=NOW) -> dict[str, bool]:
    deployment.load(rows)
    return {v.host: v.state == "up" for v in ironic_side.verdicts(judge.ask(deployment.url, conf, now))}


@pytest.mark.parametrize("timeout", [None, 45])
def test_heartbeat_timeout_is_inclusive(timeout, ironic_deployment, ironic_judge, tmp_path):
    """Exactly heartbeat_timeout old and online: alive; one second older: not. None: the default, 60."""
    limit = datetime.timedelta(seconds=60 if timeout is None else timeout)
    conf = ironic_deployment.write_conf(tmp_path / "ironic.conf", timeout)
    rows = [
        conductor(1, "at-limit", NOW - limit),
        conductor(2, "past-limit", NOW - limit - SECOND),
        conductor(3, "fresh", NOW),
        conductor(4, "short-of-limit", NOW - limit + SECOND),
    ]
    assert alive(ironic_deployment, ironic_judge, conf, rows) == {
        "at-limit": True,
        "past-limit": False,
        "fresh": True,
        "short-of-limit": True,
    }


def test_instant_with_microseconds(ironic_deployment, ironic_judge, tmp_path):
    """Half a second into the instant, the heartbeat at the limit's second is half a second too old."""
    conf = ironic_deployment.write_conf(tmp_path / "ironic.conf", 10)
    rows = [conductor(1, "limit-second", NOW - 10 * SECOND), conductor(2, "next-second", NOW - 9 * SECOND)]
    later = NOW + datetime.timedelta(microseconds=500_000)
    assert alive(ironic_deployment, ironic_judge, conf, rows, later) == {"limit-second": False, "next-second": True}


def test_online_decides_and_the_future_is_recent(ironic_deployment, ironic_judge, tmp_path):
    """Offline with a fresh heartbeat: not alive. Online with a heartbeat far ahead: alive (no abs())."""
    conf = ironic_deployment.write_conf(tmp_path / "ironic.conf", None)
    rows = [
        conductor(1, "offline-fresh", NOW, online=0),
        conductor(2, "far-future", FAR_FUTURE),
        conductor(3, "offline-future", FAR_FUTURE, online=0),
        conductor(4, "a-day-ahead", NOW + 86400 * SECOND),
    ]
    assert alive(ironic_deployment, ironic_judge, conf, rows) == {
        "offline-fresh": False,
        "far-future": True,
        "offline-future": False,
        "a-day-ahead": True,
    }


def test_the_answer_shows_each_row_as_stored(ironic_deployment, ironic_judge, tmp_path):
    """Group, drivers (NULL and JSON null as []), both times and online, as Ironic reads them."""
    conf = ironic_deployment.write_conf(tmp_path / "ironic.conf", None)
    ironic_deployment.load(
        [
            conductor(7, "a", NOW, conductor_group="rack-1", drivers='["redfish", "ipmi"]', created_at=None),
            conductor(3, "b", NOW - SECOND, drivers=None, online=0),
            conductor(5, "c", NOW, drivers="null", version="1.0"),
        ]
    )
    answer = ironic_judge.ask(ironic_deployment.url, conf, NOW)
    assert answer["microversion"] == "1.115"
    assert ironic_side.verdicts(answer) == [  # listed by id
        ironic_side.Conductor("b", "down", False, "", (), "2026-03-14T15:09:25", "2026-01-01T00:00:00", 3),
        ironic_side.Conductor("c", "up", True, "", (), "2026-03-14T15:09:26", "2026-01-01T00:00:00", 5),
        ironic_side.Conductor("a", "up", True, "rack-1", ("redfish", "ipmi"), "2026-03-14T15:09:26", None, 7),
    ]


def test_heartbeat_timeout_is_read_for_each_cloud(ironic_deployment, ironic_judge, tmp_path):
    """One judge process answers for many ironic.conf files: each answer follows its own timeout."""
    rows = [conductor(1, "old", NOW - 100 * SECOND)]
    answers = [
        alive(ironic_deployment, ironic_judge, ironic_deployment.write_conf(tmp_path / f"{t}.conf", t), rows)
        for t in (100, 99, 100, -5, 0)
    ]
    assert answers == [{"old": True}, {"old": False}, {"old": True}, {"old": False}, {"old": False}]
    ahead = [conductor(1, "ahead", NOW + 5 * SECOND)]
    answers = [
        alive(ironic_deployment, ironic_judge, ironic_deployment.write_conf(tmp_path / f"a{t}.conf", t), ahead)
        for t in (-5, -6, 0)
    ]
    assert answers == [{"ahead": True}, {"ahead": False}, {"ahead": True}]
