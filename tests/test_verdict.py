"""Nova's rule, as pure functions: Nova's own unit-test tables, the edges, and properties."""

from __future__ import annotations

import datetime

import pytest
from cloud import T
from helpers import to_us
from hypothesis import given
from hypothesis import strategies as st

from openstack_service_exporter.sources.nova.verdict import (
    HeartbeatRule,
    ServiceRow,
    effective_down_time,
    heartbeat,
    is_up,
    join_zones,
    judge,
    zone_of,
)


def us(moment: datetime.datetime | None) -> int | None:
    return None if moment is None else to_us(moment)


def row(
    created=T, updated=T, seen=T, forced=False, disabled=False, topic="compute", host="host1", binary="nova-compute"
) -> ServiceRow:
    return ServiceRow(
        "cell1", 1, host, binary, topic, 5, disabled, None, forced, 66, None, us(created), us(updated), us(seen)
    )


def verdict(r: ServiceRow, now: datetime.datetime, threshold: int, rule=HeartbeatRule.LAST_SEEN_UP) -> bool:
    return is_up(r, heartbeat(r, rule), us(now), threshold)


S = datetime.timedelta(seconds=1)


# nova/tests/unit/servicegroup/test_db_servicegroup.py::test_is_up, service_down_time = 15
@pytest.mark.parametrize(
    "created,updated,seen,now,expected",
    [
        (T, T, T, T, True),
        (T, T, T, T + 15 * S, True),
        (T, T, T, T + 16 * S, False),
        (T, T + 16 * S, T, T + 16 * S, False),  # updated_at is ignored
        (T + 16 * S, T + 16 * S, None, T + 16 * S, True),  # created_at fallback
    ],
)
def test_nova_db_servicegroup_cases(created, updated, seen, now, expected):
    assert verdict(row(created, updated, seen), now, 15) is expected


def test_forced_down_is_down_whatever_the_heartbeat():
    assert verdict(row(forced=True), T, 60) is False
    assert verdict(row(forced=None), T, 60) is True  # NULL forced_down reads as false


def test_threshold_is_inclusive_to_the_microsecond():
    r = row(seen=T)
    assert verdict(r, T + 60 * S, 60) is True
    assert verdict(r, T + 60 * S + datetime.timedelta(microseconds=1), 60) is False


def test_future_heartbeat_is_up_only_within_threshold():
    assert verdict(row(seen=T + 60 * S), T, 60) is True
    assert verdict(row(seen=T + 61 * S), T, 60) is False


def test_no_timestamp_at_all_is_down():
    # Nova raises here (HTTP 500); the exporter calls it down.
    r = row(created=None, updated=None, seen=None)
    assert heartbeat(r, HeartbeatRule.LAST_SEEN_UP) is None
    assert verdict(r, T, 60) is False


def test_disabled_does_not_change_the_state():
    assert verdict(row(disabled=True), T, 60) is True


def test_seed_scenario_heartbeat_moved_one_hour_back_is_down():
    assert verdict(row(seen=T - datetime.timedelta(hours=1)), T, 60) is False


@pytest.mark.parametrize(
    "down,interval,expected",
    [(60, 10, 60), (15, 10, 15), (10, 10, 25), (7, 10, 25), (5, 7, 17), (0, 1, 2), (11, 10, 11)],
)
def test_effective_down_time_override_truncates(down, interval, expected):
    assert effective_down_time(down, interval) == expected


def test_pre_liberty_rule_uses_updated_at_then_created_at():
    r = row(created=T - 100 * S, updated=T - 10 * S, seen=None)
    assert heartbeat(r, HeartbeatRule.UPDATED_AT) == us(T - 10 * S)
    assert verdict(r, T, 15, HeartbeatRule.UPDATED_AT) is True
    assert verdict(r, T, 15, HeartbeatRule.LAST_SEEN_UP) is False  # modern Nova would use created_at
    assert heartbeat(row(updated=None, seen=None), HeartbeatRule.UPDATED_AT) == us(T)


def test_zone_of_follows_topic_not_binary():
    zones = {"host1": "az1,az2"}
    assert zone_of(row(topic="compute"), zones, "nova", "internal") == "az1,az2"
    assert zone_of(row(topic="compute", host="other"), zones, "nova", "internal") == "nova"
    assert zone_of(row(topic="conductor"), zones, "nova", "internal") == "internal"
    assert zone_of(row(topic=None, binary="nova-compute"), zones, "nova", "internal") == "internal"
    assert zone_of(row(topic="compute", host="HOST1"), zones, "nova", "internal") == "nova"  # case-sensitive
    assert join_zones({"b", "a"}) == "a,b"


# nova/tests/unit/api/openstack/compute/test_services.py, now 2012-10-29 13:42:11, defaults 60/10
API_CASES = [
    ("nova-scheduler", "host1", "scheduler", True, datetime.datetime(2012, 10, 29, 13, 42, 2), True, "internal"),
    ("nova-compute", "host1", "compute", True, datetime.datetime(2012, 10, 29, 13, 42, 5), True, "nova"),
    ("nova-scheduler", "host2", "scheduler", False, datetime.datetime(2012, 9, 19, 6, 55, 34), False, "internal"),
    ("nova-compute", "host2", "compute", True, datetime.datetime(2012, 9, 18, 8, 3, 38), False, "nova"),
]


@pytest.mark.parametrize("binary,host,topic,disabled,seen,up,zone", API_CASES)
def test_nova_api_unit_test_table(binary, host, topic, disabled, seen, up, zone):
    r = row(
        seen=seen,
        updated=seen,
        topic=topic,
        host=host,
        binary=binary,
        disabled=disabled,
        created=datetime.datetime(2012, 9, 18, 2, 46, 27),
    )
    [j] = judge([r], us(T), effective_down_time(60, 10), HeartbeatRule.LAST_SEEN_UP, {}, "nova", "internal")
    assert (j.up, j.zone) == (up, zone)


stamps = st.one_of(st.none(), st.integers(min_value=-(10**17), max_value=10**17))


@given(
    created=stamps,
    seen=stamps,
    now=st.integers(min_value=-(10**17), max_value=10**17),
    threshold=st.integers(min_value=0, max_value=10**6),
    forced=st.sampled_from([None, False, True]),
)
def test_verdict_matches_nova_float_rule(created, seen, now, threshold, forced):
    """The integer rule equals Nova's `abs(timeutils.delta_seconds(beat, now)) <= threshold` on datetimes."""
    r = ServiceRow("c", 1, "h", "nova-compute", "compute", 0, False, None, forced, None, None, created, None, seen)
    beat = seen if seen is not None else created
    got = is_up(r, heartbeat(r, HeartbeatRule.LAST_SEEN_UP), now, threshold)
    if forced or beat is None:
        assert got is False
    else:
        delta = datetime.timedelta(microseconds=now) - datetime.timedelta(microseconds=beat)
        assert got is (abs(delta) <= datetime.timedelta(seconds=threshold))


@given(
    rows=st.lists(
        st.tuples(
            stamps,
            stamps,
            stamps,
            st.sampled_from([None, 0, 1, True]),
            st.sampled_from(["compute", "conductor", None]),
            st.sampled_from(["h1", "h2", "H1", None]),
            st.sampled_from(["c1", "c2"]),
        ),
        max_size=20,
    ),
    now=st.integers(min_value=-(10**17), max_value=10**17),
    threshold=st.integers(min_value=-5, max_value=10**6),
)
def test_judge_agrees_with_the_single_rules(rows, now, threshold):
    """judge() writes heartbeat(), is_up() and zone_of() out in one loop; it must say the same."""
    service_rows = [
        ServiceRow(cell, i, host, "nova-x", topic, 0, 0, None, forced, None, None, created, updated, seen)
        for i, (created, updated, seen, forced, topic, host, cell) in enumerate(rows)
    ]
    rules = {"c1": HeartbeatRule.LAST_SEEN_UP, "c2": HeartbeatRule.UPDATED_AT}
    zones = {"h1": "az1", "h2": "az1,az2"}
    for r, j in zip(service_rows, judge(service_rows, now, threshold, rules, zones, "nova", "internal"), strict=True):
        beat = heartbeat(r, rules[r.cell])
        assert j.heartbeat == beat and j.up is is_up(r, beat, now, threshold)
        assert j.zone == zone_of(r, zones, "nova", "internal")
        assert j.age_us == (None if beat is None else now - beat)
