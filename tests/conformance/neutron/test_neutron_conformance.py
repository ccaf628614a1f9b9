"""Row for row, the exporter says what Neutron 29.0.0 says about every agent, on a hundred randomized clouds.

For every cloud (neutron_random.generate(seed)): its rows replace the agents table, its neutron.conf and
ml2_conf.ini are written, and at one frozen instant Neutron (neutron_judge.py, in the oracle venv) and
the exporter (`list --format json --project neutron` under freezegun, and the /metrics exposition parsed
back) each give every agent's state, status, zone, agent_type, topic, id and started_at (the listing
also admin_state_up, heartbeat_timestamp and created_at), keyed by (binary, host). Any difference fails
with both rows side by side and the seed that rebuilds the cloud.
"""

from __future__ import annotations

import collections
import datetime

import neutron_random
import neutron_side
import pytest
from neutron_side import JUDGE_NAME, LIST_FIELDS, METRIC_FIELDS
from verdicts import compare_clouds, differences

pytestmark = pytest.mark.conformance

BATCHES = 4
CLOUDS_PER_BATCH = 25
FIRST_SEED = 20260101
SEEDS = range(FIRST_SEED, FIRST_SEED + BATCHES * CLOUDS_PER_BATCH)
SECOND = datetime.timedelta(seconds=1)


@pytest.fixture
def nova_conf(tmp_path):
    """An empty nova.conf: the exporter reads no Nova (and searches no default place for one)."""
    path = tmp_path / "nova.conf"
    path.write_text("")
    return path


def compare_cloud(cloud, deployment, judge, config_dir, nova_conf) -> tuple[collections.Counter, list[str]]:
    """Counts of what was compared, and every disagreement of the exporter's outputs with Neutron."""
    deployment.load(cloud)
    files = deployment.write_conf(config_dir, cloud.options)
    answer = judge.ask(config_dir, cloud.now)
    neutron = neutron_side.from_neutron(answer)

    def context(key):
        return repr(cloud.row(*key))

    counts = collections.Counter(a.state for a in neutron)
    counts["rows"] = len(neutron)
    seen, records = neutron_side.listed(nova_conf, files, cloud.now)
    neutron_then = neutron if seen == cloud.now else neutron_side.from_neutron(judge.ask(config_dir, seen))
    problems = [
        f"list --format json (at {seen.isoformat()}): {d}"
        for d in differences(
            neutron_then, neutron_side.from_listing(records), LIST_FIELDS, context, reference=JUDGE_NAME
        )
    ]
    problems += frozen_clock_problems(cloud, seen, records)
    text = neutron_side.scraped(nova_conf, files, cloud.now)
    problems += [
        f"/metrics: {d}"
        for d in differences(
            neutron_side.for_metrics(neutron),
            neutron_side.from_exposition(text),
            METRIC_FIELDS,
            context,
            reference=JUDGE_NAME,
        )
    ]
    if neutron_side.down_time(text) != answer["agent_down_time"]:
        problems.append(
            f"/metrics: service_down_time_seconds {neutron_side.down_time(text)}, "
            f"Neutron's agent_down_time {answer['agent_down_time']}"
        )
    return counts, problems


def frozen_clock_problems(cloud, now, records) -> list[str]:
    """The exporter judged at the frozen instant: every heartbeat age is exactly now - heartbeat."""
    out = []
    for r in records:
        expected = (now - cloud.row(r["binary"], r["host"])["heartbeat_timestamp"]).total_seconds()
        if r["heartbeat_age_seconds"] != expected:
            out.append(f"clock not frozen: {r['binary']} {r['host']} age {r['heartbeat_age_seconds']} != {expected}")
    return out


@pytest.mark.parametrize("batch", range(BATCHES))
def test_exporter_agrees_with_neutron(batch, neutron_deployment, neutron_judge, nova_conf, tmp_path):
    counts, failures = compare_clouds(
        map(neutron_random.generate, SEEDS[batch * CLOUDS_PER_BATCH : (batch + 1) * CLOUDS_PER_BATCH]),
        lambda cloud: compare_cloud(
            cloud, neutron_deployment, neutron_judge, tmp_path / f"neutron-{cloud.seed}", nova_conf
        ),
    )
    neutron_deployment.tally.update(clouds=CLOUDS_PER_BATCH, rows=counts["rows"], disagreeing=len(failures))
    assert counts["up"] > 5 * CLOUDS_PER_BATCH and counts["down"] > 5 * CLOUDS_PER_BATCH, counts
    assert not failures, f"{len(failures)} of {CLOUDS_PER_BATCH} clouds disagree:\n\n" + "\n\n".join(failures)


def test_the_comparison_sees_one_second(neutron_deployment, neutron_judge, nova_conf, tmp_path):
    """The harness can fail: judged 1 s later than Neutron, the exporter disagrees on exactly the rows
    at the threshold (alive for Neutron, down a second later)."""
    cloud = next(c for c in map(neutron_random.generate, SEEDS) if len(boundary_rows(c)) >= 2)
    neutron_deployment.load(cloud)
    files = neutron_deployment.write_conf(tmp_path, cloud.options)
    neutron = neutron_side.for_metrics(neutron_side.from_neutron(neutron_judge.ask(tmp_path, cloud.now)))
    scraped = neutron_side.from_exposition(neutron_side.scraped(nova_conf, files, cloud.now + SECOND))
    disagreeing = [d.splitlines()[0].strip().rstrip(":") for d in differences(neutron, scraped, ("state",))]
    assert sorted(disagreeing) == sorted(repr(key) for key in boundary_rows(cloud))


def boundary_rows(cloud) -> list[tuple]:
    """(binary, host) of the rows whose heartbeat turns `agent_down_time` old within the next second."""
    limit = cloud.options.threshold * SECOND
    return [
        (r["binary"], r["host"]) for r in cloud.agents if limit - SECOND < cloud.now - r["heartbeat_timestamp"] <= limit
    ]


def test_ovn_makes_the_answer_partial(neutron_deployment, ml2_ovn_conf, nova_conf, tmp_path):
    """With `ovn` in [ml2] mechanism_drivers the OVN agents are not in the table: the exporter says so."""
    cloud = neutron_random.generate(FIRST_SEED)
    neutron_deployment.load(cloud)
    files = neutron_deployment.write_conf(tmp_path / "ovs", cloud.options)
    assert partial(neutron_side.scraped(nova_conf, files, cloud.now)) == {}
    files = neutron_deployment.write_conf(tmp_path / "ovn", cloud.options)
    # OVN's databases where nothing answers (ports of our own): the agents table is the whole answer read.
    from mariadb import free_port

    files[1].write_text(
        ml2_ovn_conf.read_text().replace(":6641", f":{free_port()}").replace(":6642", f":{free_port()}")
    )
    assert partial(neutron_side.scraped(nova_conf, files, cloud.now)) == {"ovn": 1}


def partial(text: str) -> dict[str, float]:
    """service_exporter_source_partial{project="neutron"} series that are set, by reason."""
    return {
        labels["reason"]: value
        for labels, value in neutron_side.neutron_samples(text).get("service_exporter_source_partial", [])
        if value
    }


def test_the_clouds_reach_every_edge():
    """The seeds above do produce the cases the comparison is meant to cover (counted on the rows and
    options generated, before any verdict)."""
    seen = collections.Counter()
    for cloud in map(neutron_random.generate, SEEDS):
        seen.update(edges(cloud))
    least = {
        "threshold old, instant on the second": 50,
        "threshold old, instant with microseconds": 50,
        "1 s past the threshold": 50,
        "1 s short of the threshold": 50,
        "heartbeat ahead": 100,
        "heartbeat years ahead": 20,
        "long dead": 50,
        "admin down, alive": 50,
        "admin down, dead": 50,
        "DHCP or L3 with a zone": 100,
        "DHCP or L3 with a NULL zone": 30,
        "DHCP or L3 with an empty zone": 10,
        "restarted since created": 100,
        "FQDN host": 10,
        "upper-case host": 10,
        "agent_down_time not written": 5,
        "agent_down_time non-default": 50,
        "agent_down_time 3 or less": 10,
        "agent_down_time at its maximum": 2,
        "instant on the second": 20,
        "instant with microseconds": 20,
        **{f"type {kind.agent_type}": 10 for kind in neutron_random.KINDS},
    }
    short = {case: seen[case] for case, n in least.items() if seen[case] < n}
    assert not short, f"too few: {short}; all: {dict(seen)}"
    assert sum(len(c.agents) for c in map(neutron_random.generate, SEEDS)) >= 2000


def edges(cloud) -> collections.Counter:
    found = collections.Counter()
    down, now = cloud.options.agent_down_time, cloud.now
    limit, second = cloud.options.threshold * SECOND, now.replace(microsecond=0)
    found["agent_down_time not written"] += down is None
    found["agent_down_time non-default"] += down not in (None, neutron_random.DEFAULT_DOWN_TIME)
    found["agent_down_time 3 or less"] += down is not None and down <= 3
    found["agent_down_time at its maximum"] += down == max(d for d in neutron_random.DOWN_TIMES if d)
    found["instant with microseconds" if now.microsecond else "instant on the second"] += 1
    for r in cloud.agents:
        age = second - r["heartbeat_timestamp"]
        fresh = now - r["heartbeat_timestamp"] <= limit
        found[f"type {r['agent_type']}"] += 1
        if age == limit:
            found[
                "threshold old, instant with microseconds"
                if now.microsecond
                else "threshold old, instant on the second"
            ] += 1
        found["1 s past the threshold"] += age == limit + SECOND
        found["1 s short of the threshold"] += age == limit - SECOND
        found["heartbeat ahead"] += r["heartbeat_timestamp"] > now
        found["heartbeat years ahead"] += r["heartbeat_timestamp"] > now + datetime.timedelta(days=365)
        found["long dead"] += age > limit + SECOND
        if not r["admin_state_up"]:
            found["admin down, alive" if fresh else "admin down, dead"] += 1
        if r["agent_type"] in (neutron_random.DHCP.agent_type, neutron_random.L3.agent_type):
            zone = r["availability_zone"]
            found[
                "DHCP or L3 with a NULL zone"
                if zone is None
                else "DHCP or L3 with an empty zone"
                if zone == ""
                else "DHCP or L3 with a zone"
            ] += 1
        found["restarted since created"] += r["started_at"] > r["created_at"]
        found["FQDN host"] += "." in r["host"]
        found["upper-case host"] += r["host"] != r["host"].lower()
    return found
