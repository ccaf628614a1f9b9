"""Row for row, the exporter says what Nova 34.0.0 says, on hundreds of randomized clouds.

For every cloud (random_clouds.generate(seed)): its rows are written into the deployment's databases,
its nova.conf is written, and at one frozen instant Nova (nova_judge.py, in Nova's venv) and the
exporter (`list --format json` under freezegun, and the /metrics exposition parsed back) each give
every listed service's state, status, forced_down, zone, disabled_reason and updated_at. Any
difference fails with both rows side by side and the seed that rebuilds the cloud.
"""
from __future__ import annotations

import dataclasses

import pytest

import exporter_side
import nova_side
import random_clouds
from verdicts import ALL_FIELDS, METRIC_FIELDS, Verdict, differences

pytestmark = pytest.mark.conformance

BATCHES = 8
CLOUDS_PER_BATCH = 30
FIRST_SEED = 20260101


def compare_cloud(cloud, deployment, judge, conf) -> tuple[int, list[str]]:
    """(rows compared, disagreements) for one cloud, on both of the exporter's outputs."""
    deployment.load(cloud)
    deployment.write_conf(conf, cloud.options)
    nova = nova_side.verdicts(judge.ask(conf, cloud.now))

    def context(key):
        return repr(cloud.row(*key))

    seen, records = exporter_side.listed(conf, cloud.now)
    nova_then = nova if seen == cloud.now else nova_side.verdicts(judge.ask(conf, seen))
    problems = [f"list --format json (at {seen.isoformat()}): {d}" for d in
                differences(nova_then, exporter_side.from_listing(records), ALL_FIELDS, context)]
    problems += frozen_clock_problems(cloud, seen, records)
    # An empty label is how /metrics shows a NULL disabled_reason.
    nova_as_labels = [dataclasses.replace(v, disabled_reason=v.disabled_reason or "") for v in nova]
    scraped = exporter_side.from_exposition(exporter_side.scraped(conf, cloud.now))
    problems += [f"/metrics: {d}" for d in differences(nova_as_labels, scraped, METRIC_FIELDS, context)]
    return len(nova), problems


def frozen_clock_problems(cloud, now, records) -> list[str]:
    """The exporter judged at the frozen instant: every heartbeat age is exactly now - heartbeat."""
    out = []
    for r in records:
        row = cloud.row(r["cell"], r["binary"], r["host"])
        beat = row["last_seen_up"] or row["created_at"]
        expected = (now - beat).total_seconds()
        if r["heartbeat_age_seconds"] != expected:
            out.append(f"clock not frozen: {r['cell']} {r['binary']} {r['host']} age "
                       f"{r['heartbeat_age_seconds']} != {expected}")
    return out


@pytest.mark.parametrize("batch", range(BATCHES))
def test_exporter_agrees_with_nova(batch, nova_deployment, nova_judge, tmp_path):
    compared, failures = 0, []
    for seed in range(FIRST_SEED + batch * CLOUDS_PER_BATCH, FIRST_SEED + (batch + 1) * CLOUDS_PER_BATCH):
        cloud = random_clouds.generate(seed)
        rows, problems = compare_cloud(cloud, nova_deployment, nova_judge, tmp_path / f"nova-{seed}.conf")
        compared += rows
        if problems:
            failures.append(f"cloud {cloud.describe()}\n" + "\n".join(problems))
    assert compared > 10 * CLOUDS_PER_BATCH
    assert not failures, f"{len(failures)} of {CLOUDS_PER_BATCH} clouds disagree:\n\n" + "\n\n".join(failures)
