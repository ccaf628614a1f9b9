"""Row for row, the exporter says what cinder 29.0.0's GET /v3/{project}/os-services says, on
randomized clouds.

For every cloud (cinder_random.generate(seed)): its rows are written into the database that
cinder-manage made, its cinder.conf is written, and at one frozen instant Cinder (cinder_judge.py,
its real API in the oracle venv) and the exporter (`list --format json --project cinder` under
freezegun, and the /metrics exposition parsed back) each give every listed service's state, status,
zone, disabled_reason and cluster (and, for cinder-volume, where the API shows them: frozen,
replication_status, active_backend_id). Series are unique per (binary, host) and Cinder allows
several live rows of one: the exporter shows the one with the newest heartbeat (a tie goes to the
higher id), and that row, found by its id (JSON) or uuid (/metrics) among the rows Cinder judged, is
compared. Any difference fails with both sides and the database row, and the seed that rebuilds the
cloud.
"""

from __future__ import annotations

import collections
import datetime

import cinder_exporter_side
import cinder_random
import pytest
from cinder_random import Cloud

pytestmark = pytest.mark.conformance

SEEDS = cinder_random.SEEDS
BATCHES = 8
CLOUDS_PER_BATCH = len(SEEDS) // BATCHES
FIELDS = ("state", "status", "zone", "disabled_reason", "cluster")
VOLUME_FIELDS = ("frozen", "replication_status", "active_backend_id")  # the API shows them for cinder-volume only
ONE_SECOND = datetime.timedelta(seconds=1)


def heartbeat(row: dict) -> datetime.datetime:
    return row["updated_at"] or row["created_at"]


def groups(cinder) -> dict[tuple, list]:
    out = collections.defaultdict(list)
    for r in cinder:
        out[r.key].append(r)
    return out


def chosen(cloud: Cloud, rows: list) -> int:
    """The id the exporter must show for one (binary, host) group (CONTRACT: newest heartbeat, a tie
    to the higher id); not a verdict, which stays Cinder's."""
    return max(rows, key=lambda r: (heartbeat(cloud.row(r.id)), r.id)).id


def report(cloud: Cloud, key: tuple, service_id: int | None, pairs: list[tuple]) -> str:
    lines = [f"  {key}:", f"    {'field':<22} {'Cinder 29.0.0':<38} exporter"]
    for name, theirs, ours in pairs:
        lines.append(f"    {name:<22} {theirs!r:<38} {ours!r}{'' if theirs == ours else '   <== differs'}")
    if service_id is not None:
        lines.append(f"    row: {cloud.row(service_id)!r}")
    return "\n".join(lines)


def expected(row, volume_fields) -> dict:
    """Cinder's answer for one row, field by field."""
    values = {name: getattr(row, name) for name in FIELDS}
    if row.binary == "cinder-volume":
        values.update({name: row.raw[name] for name in volume_fields})
    return {"uuid": row.uuid, **values}


def listing_problems(cloud: Cloud, cinder: list, seen: datetime.datetime, records: list[dict]) -> list[str]:
    by_id, by_key = {r.id: r for r in cinder}, groups(cinder)
    out, keys = [], collections.Counter()
    for rec in records:
        key = (rec["binary"], rec["host"])
        keys[key] += 1
        theirs = by_id.get(rec["id"])
        if rec["project"] != "cinder" or theirs is None or theirs.key != key:
            out.append(f"  {key}: record {rec!r} is no row Cinder listed under that key")
            continue
        want = expected(theirs, VOLUME_FIELDS)
        pairs = [(name, value, rec.get(name)) for name, value in want.items()] + [("cell", "", rec.get("cell"))]
        pairs.append(("id (newest heartbeat)", chosen(cloud, by_key[key]), rec["id"]))
        pairs.append(
            (
                "heartbeat_age_seconds",
                (seen - heartbeat(cloud.row(rec["id"]))).total_seconds(),
                rec["heartbeat_age_seconds"],
            )
        )
        if any(theirs != ours for _, theirs, ours in pairs):
            out.append(report(cloud, key, rec["id"], pairs))
    missing = by_key.keys() - keys.keys()
    out += [f"  {key}: listed by Cinder, not by the exporter" for key in sorted(missing)]
    out += [f"  {key}: {n} records" for key, n in keys.items() if n > 1]
    return out


def label(value) -> str:
    """A value as a label: an empty label stands for NULL, booleans are true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def metrics_problems(
    cloud: Cloud, cinder: list, scraped, fields=FIELDS + ("uuid",), volume_fields=VOLUME_FIELDS
) -> list[str]:
    by_uuid, by_key = {r.uuid: r for r in cinder}, groups(cinder)
    out = []
    for key, series in sorted(scraped.services.items()):
        absent = {"service_up", "service_disabled", "service_info"} - series.keys()
        theirs = None if absent else by_uuid.get(series["service_info"][0].get("uuid"))
        if theirs is None or theirs.key != key:
            out.append(f"  {key}: series {sorted(series)} name no row Cinder listed under that key")
            continue
        (labels, up), info = series["service_up"], series["service_info"][0]
        ours = {
            "cell": labels.get("cell"),
            "state": "up" if up == 1 else "down",
            "status": "disabled" if series["service_disabled"][1] == 1 else "enabled",
            "zone": labels.get("zone"),
            **{name: info.get(name) for name in ("disabled_reason", "cluster", "uuid", *volume_fields)},
        }
        want = {"cell": "", **expected(theirs, volume_fields)}
        pairs = [
            (name, label(value), ours[name])
            for name, value in want.items()
            if name in ("cell", *fields, *volume_fields)
        ]
        pairs.append(("id (newest heartbeat)", chosen(cloud, by_key[key]), theirs.id))
        if any(a != b for _, a, b in pairs):
            out.append(report(cloud, key, theirs.id, pairs))
    missing = by_key.keys() - scraped.services.keys()
    out += [f"  {key}: listed by Cinder, not on /metrics" for key in sorted(missing)]
    return out


def health_problems(scraped, cinder: list, down_time: int) -> list[str]:
    duplicates = sum(len(rows) - 1 for rows in groups(cinder).values())
    want = {
        "service_exporter_duplicate_rows": duplicates,
        "service_down_time_seconds": down_time,
        "service_exporter_database_up": 1,
    }
    return [
        f'  {name}{{project="cinder"}}: {scraped.health.get(name)!r}, Cinder\'s answer gives {value}'
        for name, value in want.items()
        if scraped.health.get(name) != value
    ]


def compare_cloud(cloud: Cloud, deployment, judge, workdir) -> tuple[collections.Counter, list[str]]:
    """Counts of what was compared, and every disagreement of the exporter's outputs with Cinder."""
    deployment.load(cloud)
    conf = deployment.write_conf(workdir / f"cinder-{cloud.seed}.conf", cloud)
    exporter_conf = cinder_exporter_side.write_exporter_conf(workdir / f"exporter-{cloud.seed}.conf", conf)
    answer = judge.ask(conf, cloud.now)
    cinder = answer.rows
    assert sorted(r.id for r in cinder) == sorted(r["id"] for r in cloud.listed()), "the judge paired rows wrongly"
    counts = collections.Counter(r.state for r in cinder)
    counts.update(rows=len(cinder), duplicates=sum(len(g) for g in groups(cinder).values() if len(g) > 1))
    seen, records = cinder_exporter_side.listed(exporter_conf, cloud.now)
    cinder_then = cinder if seen == cloud.now else judge.ask(conf, seen).rows
    problems = [
        f"list --format json (at {seen.isoformat()}):\n{p}" for p in listing_problems(cloud, cinder_then, seen, records)
    ]
    scraped = cinder_exporter_side.scraped(exporter_conf, cloud.now)
    problems += [f"/metrics:\n{p}" for p in metrics_problems(cloud, cinder, scraped)]
    problems += [f"/metrics health:\n{p}" for p in health_problems(scraped, cinder, answer.service_down_time)]
    return counts, problems


@pytest.mark.parametrize("batch", range(BATCHES))
def test_exporter_agrees_with_cinder(batch, cinder_deployment, cinder_judge, tmp_path, cinder_tally):
    counts, failures = collections.Counter(), []
    for seed in SEEDS[batch * CLOUDS_PER_BATCH : (batch + 1) * CLOUDS_PER_BATCH]:
        cloud = cinder_random.generate(seed)
        found, problems = compare_cloud(cloud, cinder_deployment, cinder_judge, tmp_path)
        counts.update(found)
        if problems:
            failures.append(f"cloud {cloud.describe()}\n" + "\n".join(problems))
    cinder_tally.update(
        clouds=CLOUDS_PER_BATCH, rows=counts["rows"], duplicates=counts["duplicates"], disagreeing=len(failures)
    )
    assert counts["up"] > 3 * CLOUDS_PER_BATCH and counts["down"] > 3 * CLOUDS_PER_BATCH, counts
    assert not failures, f"{len(failures)} of {CLOUDS_PER_BATCH} clouds disagree:\n\n" + "\n\n".join(failures)


def boundary_ids(cloud: Cloud) -> list[int]:
    """Listed rows exactly the down time old (a generator's guide, not a verdict)."""
    return [r["id"] for r in cloud.listed() if cloud.now - heartbeat(r) == cloud.options.down_time * ONE_SECOND]


def test_the_comparison_sees_one_second(cinder_deployment, cinder_judge, tmp_path):
    """The harness can fail: with Cinder asked 1 s after the exporter, the comparison reports
    exactly the shown rows whose verdict Cinder changes in that second, among them every one exactly
    the down time old."""
    cloud = next(
        c
        for c in map(cinder_random.generate, SEEDS)
        if c.now.microsecond == 0 and c.options.down_time > 0 and boundary_ids(c)
    )
    cinder_deployment.load(cloud)
    conf = cinder_deployment.write_conf(tmp_path / "cinder.conf", cloud)
    exporter_conf = cinder_exporter_side.write_exporter_conf(tmp_path / "exporter.conf", conf)
    now, later = cinder_judge.ask(conf, cloud.now).rows, cinder_judge.ask(conf, cloud.now + ONE_SECOND).rows
    scraped = cinder_exporter_side.scraped(exporter_conf, cloud.now)
    assert not metrics_problems(cloud, now, scraped, ("state",), ()), "the exporter disagrees at the same instant"
    reported = {p.splitlines()[0].strip().rstrip(":") for p in metrics_problems(cloud, later, scraped, ("state",), ())}
    shown = {info["uuid"] for info, _ in (s["service_info"] for s in scraped.services.values())}
    state_later = {r.id: r.state for r in later}
    flipped = {repr(r.key) for r in now if r.state != state_later[r.id] and r.uuid in shown}
    assert reported == flipped
    at_boundary = {repr(r.key) for r in now if r.id in boundary_ids(cloud) and r.uuid in shown}
    assert at_boundary and at_boundary <= reported, (at_boundary, reported)


def test_the_clouds_reach_every_edge():
    """The seeds above do produce the cases the comparison is meant to cover (counted on the rows
    and options generated, before any verdict)."""
    seen = collections.Counter()
    for cloud in map(cinder_random.generate, SEEDS):
        seen.update(edges(cloud))
    least = {
        "exactly the down time old": 30,
        "the down time old to the second, instant with µs": 30,
        "one second short of the down time": 30,
        "one second past the down time": 30,
        "exactly the down time ahead": 30,
        "the down time ahead to the second, instant with µs": 30,
        "one second beyond the down time ahead": 30,
        "within the down time ahead": 30,
        "far ahead": 30,
        "updated_at NULL (created_at fallback)": 50,
        "fresh created_at, stale updated_at": 20,
        "fresh modified_at, stale heartbeat": 20,
        "disabled with a reason": 50,
        "disabled, no reason": 20,
        "enabled, reason left": 10,
        "disabled NULL": 10,
        "deleted twin, deleted = 1": 50,
        "deleted twin, deleted NULL": 10,
        "duplicate (binary, host) group": 30,
        "duplicate group, tied heartbeats": 8,
        "cinder-scheduler": 100,
        "cinder-volume": 500,
        "cinder-backup": 100,
        "non-default zone": 200,
        "empty zone": 20,
        "clustered": 100,
        "frozen": 30,
        "frozen NULL": 20,
        "replication_status other than not-capable": 100,
        "active_backend_id": 50,
        "down time below report_interval": 8,
        "down time equal to report_interval": 3,
        "down time above report_interval": 30,
        "down time 0 or below": 4,
        "Cinder's defaults": 5,
        "whole-second instant": 20,
        "instant with µs": 20,
    }
    short = {case: seen[case] for case, n in least.items() if seen[case] < n}
    assert not short, f"too few: {short}; all: {dict(seen)}"
    assert sum(len(cinder_random.generate(s).listed()) for s in SEEDS) >= 2000


def edges(cloud: Cloud) -> collections.Counter:
    found = collections.Counter()
    options, now = cloud.options, cloud.now
    second, down = now.replace(microsecond=0), options.down_time * ONE_SECOND
    interval = 10 if options.report_interval is None else options.report_interval
    found["down time below report_interval"] += options.down_time < interval
    found["down time equal to report_interval"] += options.down_time == interval
    found["down time above report_interval"] += options.down_time > interval
    found["down time 0 or below"] += options.down_time <= 0
    found["Cinder's defaults"] += not options.written()
    found["whole-second instant" if now.microsecond == 0 else "instant with µs"] += 1
    for r in cloud.services:
        if r["deleted"] != 0:
            found["deleted twin, deleted NULL" if r["deleted"] is None else "deleted twin, deleted = 1"] += 1
            continue
        beat = heartbeat(r)
        whole = now.microsecond == 0
        found["exactly the down time old"] += whole and second - beat == down
        found["the down time old to the second, instant with µs"] += not whole and second - beat == down
        found["one second short of the down time"] += second - beat == down - ONE_SECOND
        found["one second past the down time"] += second - beat == down + ONE_SECOND
        found["exactly the down time ahead"] += whole and beat - second == down
        found["the down time ahead to the second, instant with µs"] += not whole and beat - second == down
        found["one second beyond the down time ahead"] += beat - second == down + ONE_SECOND
        found["within the down time ahead"] += now < beat < now + down
        found["far ahead"] += beat > now + down + ONE_SECOND
        found["updated_at NULL (created_at fallback)"] += r["updated_at"] is None
        found["fresh created_at, stale updated_at"] += (
            r["updated_at"] is not None and r["created_at"] == second and now - r["updated_at"] > down
        )
        found["fresh modified_at, stale heartbeat"] += (
            r["modified_at"] is not None and now - beat > down and abs(now - r["modified_at"]) <= down
        )
        found["disabled with a reason"] += bool(r["disabled"]) and bool(r["disabled_reason"])
        found["disabled, no reason"] += bool(r["disabled"]) and not r["disabled_reason"]
        found["enabled, reason left"] += r["disabled"] == 0 and r["disabled_reason"] is not None
        found["disabled NULL"] += r["disabled"] is None
        found[r["binary"]] += 1
        found["non-default zone"] += r["availability_zone"] != "nova"
        found["empty zone"] += r["availability_zone"] == ""
        found["clustered"] += r["cluster_name"] is not None
        found["frozen"] += bool(r["frozen"])
        found["frozen NULL"] += r["frozen"] is None
        found["replication_status other than not-capable"] += r["replication_status"] != "not-capable"
        found["active_backend_id"] += r["active_backend_id"] is not None
    live = collections.defaultdict(list)
    for r in cloud.listed():
        live[(r["binary"], r["host"])].append(heartbeat(r))
    found["duplicate (binary, host) group"] += sum(1 for beats in live.values() if len(beats) > 1)
    found["duplicate group, tied heartbeats"] += sum(1 for beats in live.values() if len(beats) > len(set(beats)))
    return found
