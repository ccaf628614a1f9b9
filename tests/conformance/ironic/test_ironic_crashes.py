"""Rows on which Ironic 39.0.0's own GET /v1/conductors fails, and what the exporter gives instead.

One such row makes the whole listing an HTTP 500: no conductor of the deployment is shown, alive or
not. These rows are kept out of the row-for-row comparison (there is no Ironic answer to compare
with). test_ironic_fails_on shows, by asking real Ironic, that it does fail and why; the table
without the row answers 200. test_exporter_survives states the exporter's answer: every row listed,
the others exactly as Ironic judges them without the bad row, the bad row as Ironic judges it once
repaired (a version or a drivers value plays no part in `alive`), or down when the verdict's own
inputs (updated_at, online) are NULL.
"""

from __future__ import annotations

import datetime

import ironic_side
import pytest
from ironic_random import conductor

pytestmark = pytest.mark.conformance

NOW = datetime.datetime(2026, 3, 14, 15, 9, 26, 535_897)
FRESH = NOW.replace(microsecond=0) - datetime.timedelta(seconds=5)
# column value -> (Ironic's faultstring, where it fails)
CASES = {
    "version NULL": ({"version": None}, "Invalid version: None"),
    # ironic/objects/base.py, _from_db_object: versionutils.is_compatible(db_version, VERSION)
    "version of a newer release": (
        {"version": "1.7"},
        "Version 1.7 of Conductor is not supported, supported version is 1.6",
    ),
    # ironic/api/controllers/v1/conductor.py, convert_with_links: is_older_than(None, ...)
    "updated_at NULL": ({"updated_at": None}, "'NoneType' object has no attribute 'utcoffset'"),
    # ironic/objects/conductor.py: online is a BooleanField, not nullable
    "online NULL": ({"online": None}, "Field `online' cannot be None"),
    # oslo_db JsonEncodedType.process_result_value: json.loads
    "drivers not JSON": ({"drivers": ""}, "Expecting value: line 1 column 1 (char 0)"),
    # ListOfStringsField
    "drivers a JSON object": ({"drivers": "{}"}, "A list is required in field drivers, not a dict"),
}
REPAIRED = {"version": "1.6", "drivers": None}


def table(bad: dict) -> list[dict]:
    return [
        conductor(1, "cond-ok", FRESH, conductor_group="rack-1"),
        conductor(2, "cond-bad", **{"updated_at": FRESH, **bad}),
        conductor(3, "cond-stale", FRESH - datetime.timedelta(hours=1)),
    ]


@pytest.mark.parametrize("case", CASES)
def test_ironic_fails_on(case, ironic_deployment, ironic_judge, tmp_path):
    bad, fault = CASES[case]
    conf = ironic_deployment.write_conf(tmp_path / "ironic.conf", None)
    ironic_deployment.load(table(bad))
    answer = ironic_judge.ask(ironic_deployment.url, conf, NOW)
    assert (answer["status"], answer["error"], answer["conductors"]) == (500, fault, None)
    ironic_deployment.load([row for row in table(bad) if row["hostname"] != "cond-bad"])
    rest = ironic_side.verdicts(ironic_judge.ask(ironic_deployment.url, conf, NOW))
    assert [(v.host, v.state) for v in rest] == [("cond-ok", "up"), ("cond-stale", "down")]


@pytest.mark.parametrize("case", CASES)
def test_exporter_survives(case, ironic_deployment, ironic_judge, tmp_path):
    bad, _ = CASES[case]
    conf = ironic_deployment.write_conf(tmp_path / "ironic.conf", None)
    rows = table(bad)
    ironic_deployment.load([row for row in rows if row["hostname"] != "cond-bad"])
    others = ironic_side.verdicts(ironic_judge.ask(ironic_deployment.url, conf, NOW))
    repairable = set(bad) <= set(REPAIRED)
    if repairable:
        ironic_deployment.load(table({k: REPAIRED[k] for k in bad}))
        expected_bad = next(
            v for v in ironic_side.verdicts(ironic_judge.ask(ironic_deployment.url, conf, NOW)) if v.host == "cond-bad"
        )

    ironic_deployment.load(rows)
    exporter_conf = ironic_side.write_exporter_conf(tmp_path / "exporter.conf", conf)
    _, records = ironic_side.listed(exporter_conf, NOW)  # 1 µs either way changes no verdict here
    listed = {v.host: v for v in ironic_side.from_listing(records)}
    scraped, _ = ironic_side.from_exposition(ironic_side.scraped(exporter_conf, NOW))
    metrics = {v.host: v for v in scraped}

    assert sorted(listed) == sorted(metrics) == ["cond-bad", "cond-ok", "cond-stale"]
    for verdict in others:
        assert ironic_side.differences([verdict], [listed[verdict.host]], ironic_side.JSON_FIELDS) == []
        assert ironic_side.differences([verdict], [metrics[verdict.host]], ironic_side.METRIC_FIELDS) == []
    if repairable:
        assert (listed["cond-bad"].state, metrics["cond-bad"].state) == (expected_bad.state, expected_bad.state)
    else:
        assert (listed["cond-bad"].state, metrics["cond-bad"].state) == ("down", "down")
    if "updated_at" in bad:
        [record] = [r for r in records if r["host"] == "cond-bad"]
        assert (record["heartbeat_age_seconds"], record["updated_at"]) == (None, None)
