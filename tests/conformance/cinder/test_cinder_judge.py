"""The Cinder judge alone, on hand-made clouds whose answers are known from Cinder's code: it must
answer sensibly before its answers are trusted as the reference. Also the two rows where
`cinder-manage service list` and the scheduler (Service.is_up) disagree with the API."""

from __future__ import annotations

import collections
import datetime

import cinder_random
import pytest
from cinder_random import OBJECT_VERSION, RPC_VERSIONS, SEEDS, Cloud, Options

pytestmark = pytest.mark.conformance

NOW = datetime.datetime(2026, 3, 14, 15, 9, 26)
S = datetime.timedelta(seconds=1)


def row(
    service_id: int,
    host: str,
    binary: str = "cinder-volume",
    beat: datetime.datetime | None = NOW,
    created: datetime.datetime | None = None,
    **columns,
) -> dict:
    values = {
        "id": service_id,
        "uuid": f"00000000-0000-4000-8000-{service_id:012d}",
        "cluster_name": None,
        "host": host,
        "binary": binary,
        "topic": binary,
        "report_count": 3,
        "disabled": 0,
        "availability_zone": "nova",
        "disabled_reason": None,
        "rpc_current_version": RPC_VERSIONS[binary],
        "object_current_version": OBJECT_VERSION,
        "replication_status": "not-capable",
        "active_backend_id": None,
        "frozen": 0,
        "deleted": 0,
        "deleted_at": None,
        "modified_at": None,
        "updated_at": beat,
        "created_at": created or NOW - 1000 * S,
    }
    values.update(columns)
    return values


def judged(deployment, judge, tmp_path, rows, options=None, now=NOW) -> dict:
    options = options or Options()
    cloud = Cloud(None, now, options, rows)
    deployment.load(cloud)
    conf = deployment.write_conf(tmp_path / "cinder.conf", cloud)
    answer = judge.ask(conf, now).rows
    by_id = {r.id: r for r in answer}
    assert len(by_id) == len(answer), "each row of the answer comes from its own database row"
    return by_id


def test_at_the_down_time_to_the_second(cinder_deployment, cinder_judge, tmp_path):
    rows = [
        row(1, "a@lvm", beat=NOW - 60 * S),
        row(2, "b@lvm", beat=NOW - 61 * S),
        row(3, "c@lvm", beat=NOW + 60 * S),
        row(4, "d@lvm", beat=NOW + 61 * S),
        row(5, "sched", "cinder-scheduler", beat=NOW - 59 * S),
    ]
    answer = judged(cinder_deployment, cinder_judge, tmp_path, rows)
    assert {i: r.state for i, r in answer.items()} == {1: "up", 2: "down", 3: "up", 4: "down", 5: "up"}
    # Half a second later, the row exactly 60 s old is 60.5 s old.
    later = judged(cinder_deployment, cinder_judge, tmp_path, rows, now=NOW + S / 2)
    assert {i: r.state for i, r in later.items()} == {1: "down", 2: "down", 3: "up", 4: "down", 5: "up"}


def test_listed_rows_and_their_fields(cinder_deployment, cinder_judge, tmp_path):
    rows = [
        row(
            10,
            "vol@ceph",
            disabled=1,
            disabled_reason="firmware",
            availability_zone="az-é",
            cluster_name="cl@ceph",
            frozen=1,
            replication_status="failed-over",
            active_backend_id="b2",
        ),
        row(11, "vol@ceph", beat=NOW - 3600 * S, frozen=None),  # a second live row, long dead
        row(12, "vol@ceph", deleted=1, deleted_at=NOW - 5 * S),  # soft-deleted: not listed
        row(13, "gone@nfs", deleted=None),  # deleted NULL: not listed
        row(14, "bk", "cinder-backup", disabled=None),
    ]  # NULL disabled: enabled
    answer = judged(cinder_deployment, cinder_judge, tmp_path, rows)
    assert sorted(answer) == [10, 11, 14]
    first = answer[10]
    assert (first.state, first.status, first.zone, first.disabled_reason, first.cluster) == (
        "up",
        "disabled",
        "az-é",
        "firmware",
        "cl@ceph",
    )
    assert (first.raw["frozen"], first.raw["replication_status"], first.raw["active_backend_id"]) == (
        True,
        "failed-over",
        "b2",
    )
    assert first.uuid == "00000000-0000-4000-8000-000000000010"
    assert (answer[11].state, answer[11].key, answer[11].raw["frozen"]) == ("down", first.key, False)
    assert (answer[14].status, answer[14].binary) == ("enabled", "cinder-backup")


def test_no_report_interval_override(cinder_deployment, cinder_judge, tmp_path):
    """service_down_time 7 with report_interval 10: volume services would run with int(2.5 x 10) = 25
    (cinder/service.py, basic_config_check), the API keeps 7."""
    rows = [row(20, "a@lvm", beat=NOW - 7 * S), row(21, "b@lvm", beat=NOW - 8 * S), row(22, "c@lvm", beat=NOW - 20 * S)]
    answer = judged(cinder_deployment, cinder_judge, tmp_path, rows, Options(7, 10))
    assert cinder_judge.ask(tmp_path / "cinder.conf", NOW).service_down_time == 7
    assert {i: r.state for i, r in answer.items()} == {20: "up", 21: "down", 22: "down"}


def test_where_is_up_disagrees_with_the_api(cinder_deployment, cinder_judge, tmp_path):
    """The README's two rows: Service.is_up (cinder-manage service list, the scheduler) has no abs()
    and no created_at fallback."""
    rows = [
        row(30, "new@lvm", beat=None, created=NOW - 10 * S),  # NULL updated_at, fresh created_at
        row(31, "ahead@lvm", beat=NOW + 120 * S),  # 120 s in the future
        row(32, "fine@lvm", beat=NOW - 10 * S),
    ]
    answer = judged(cinder_deployment, cinder_judge, tmp_path, rows)
    assert {i: (r.state, r.is_up) for i, r in answer.items()} == {
        30: ("up", False),
        31: ("down", True),
        32: ("up", True),
    }


def test_the_judge_answers_every_random_cloud(cinder_deployment, cinder_judge, tmp_path):
    """Every generated cloud is answered, every live row exactly once under its own id, with the
    row's own binary, host, zone and cluster (the pairing the comparison relies on)."""
    states = collections.Counter()
    for seed in SEEDS:
        cloud = cinder_random.generate(seed)
        cinder_deployment.load(cloud)
        rows = cinder_judge.ask(cinder_deployment.write_conf(tmp_path / "cinder.conf", cloud), cloud.now).rows
        assert sorted(r.id for r in rows) == sorted(r["id"] for r in cloud.listed()), cloud.describe()
        for r in rows:
            db = cloud.row(r.id)
            assert (r.uuid, r.binary, r.host, r.zone, r.cluster) == (
                db["uuid"],
                db["binary"],
                db["host"],
                db["availability_zone"],
                db["cluster_name"],
            ), cloud.describe()
        states.update(r.state for r in rows)
    assert states["up"] > 500 and states["down"] > 500, states


def test_cinder_manage_service_list_says_the_same_as_is_up(cinder_deployment, cinder_judge, tmp_path):
    """The same two rows through `cinder-manage service list` itself, on the real clock (margins of
    tens of seconds): XXX where the API says up, :-) where it says down."""
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)
    rows = [
        row(40, "new@lvm", beat=None, created=now - 10 * S),
        row(41, "ahead@lvm", beat=now + 120 * S),
        row(42, "fine@lvm", beat=now - 10 * S),
    ]
    api = judged(cinder_deployment, cinder_judge, tmp_path, rows, now=now)
    listing = cinder_deployment.manage(tmp_path / "cinder.conf", "service", "list")
    shown = {line.split()[1]: line.split()[4] for line in listing.splitlines()[1:] if line.strip()}
    assert shown == {"new@lvm": "XXX", "ahead@lvm": ":-)", "fine@lvm": ":-)"}, listing
    assert {r.host: r.state for r in api.values()} == {"new@lvm": "up", "ahead@lvm": "down", "fine@lvm": "up"}


@pytest.mark.parametrize("columns", [{"updated_at": None, "created_at": None}], ids=["both heartbeats NULL"])
def test_rows_cinder_fails_on(columns, cinder_deployment, cinder_judge, tmp_path):
    """Rows the generator never makes: Cinder's API fails the whole listing (a TypeError in
    ServiceController.index, answered 400 by cinder/api/openstack/wsgi.py)."""
    rows = [row(50, "odd@lvm", **columns), row(51, "fine@lvm")]
    with pytest.raises(RuntimeError, match="answered 400"):
        judged(cinder_deployment, cinder_judge, tmp_path, rows)
    assert sorted(judged(cinder_deployment, cinder_judge, tmp_path, rows[1:])) == [51], "the judge goes on"
