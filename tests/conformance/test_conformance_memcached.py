"""With servicegroup_driver = mc, the exporter says what Nova 34.0.0 says, on random clouds whose
heartbeats Nova's own MemcachedDriver._report_state wrote into a real memcached.

Each cloud is random_clouds.generate(seed) (its rows, zones and options) with a short down time, its
own memcached on loopback, and a [cache] backend taken in turn from pymemcache, oslo_cache.memcache_pool
and python-memcached. Every key of a listed row ("%(topic)s:%(host)s", shared by cells) is either
written long enough ago to have expired (the test waits past the down time: the expiry is real, by the
reader's clock), written fresh, written by a host whose clock is far behind (expired at once) or far
ahead (up: dogpile's expiry has no abs()), or never written; forced_down rows come from the cloud. Then,
within one down time of the fresh writes, Nova's own servicegroup.API().service_is_up and get_updated_time
(nova_judge.py, its own process) and the exporter (`list --format json` and /metrics) judge the cloud;
state, status, forced_down, zone, disabled_reason and updated_at must agree on every row, and the
heartbeat age and last-seen time must be the cached time's.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import pathlib
import random
import time

import exporter_side
import nova_side
import pytest
import random_clouds
from helpers import EPOCH
from judge_process import JudgeProcess
from memcached import Memcached
from prometheus_client.parser import text_string_to_metric_families
from verdicts import ALL_FIELDS, METRIC_FIELDS, differences

from openstack_service_exporter.sources.nova.verdict import API_BINARIES

pytestmark = pytest.mark.conformance

FIRST_SEED = 20261207
CLOUDS = 30
# (service_down_time, report_interval): the down time is the cache's expiry; 2/2 and 1/2 are replaced by
# int(2.5 x 2) = 5 in servicegroup.API, and the region must get the replaced one.
TIMINGS = ((4, 1), (5, 2), (2, 2), (1, 2), (6, 3))
BACKENDS = ("dogpile.cache.pymemcache", "oslo_cache.memcache_pool", "dogpile.cache.memcached")
KINDS = ("fresh", "expired", "never", "clock behind", "clock ahead")
WRITER = pathlib.Path(__file__).with_name("nova_heartbeats.py")
MARGIN = 1.0  # seconds kept between any heartbeat's age and the down time while both sides judge


class NovaWriter(JudgeProcess):
    """nova_heartbeats.py in the Nova venv: Nova's MemcachedDriver writes what it is asked to."""

    def __init__(self, nova_python: pathlib.Path, stderr_path: pathlib.Path):
        super().__init__("Nova's writer", nova_python, WRITER, stderr_path, timeout=nova_side.ANSWER_TIMEOUT)

    def write(self, conf: pathlib.Path, beats: list[dict]) -> list[datetime.datetime]:
        answer = self._request({"config": str(conf), "beats": beats})
        return [datetime.datetime.fromisoformat(moment) for moment in answer["written"]]


@pytest.fixture(scope="module")
def writer(nova_python, tmp_path_factory):
    process = NovaWriter(nova_python, tmp_path_factory.mktemp("nova-writer") / "stderr.log")
    yield process
    process.close()


@pytest.fixture(scope="module")
def mc_judge(nova_deployment, nova_python, tmp_path_factory):
    # NOTE: its own judge process: Nova keeps the availability-zone cache client of the first memcached it
    # met for the life of the process, and these servers are stopped at the end of this module.
    judge = nova_side.NovaJudge(nova_python, tmp_path_factory.mktemp("nova-mc-judge") / "stderr.log")
    yield judge
    judge.close()


@dataclasses.dataclass
class McCloud:
    cloud: random_clouds.Cloud
    conf: pathlib.Path
    server: Memcached
    kinds: dict[str, str]  # cache key -> KINDS
    written: dict[str, datetime.datetime] = dataclasses.field(default_factory=dict)  # key -> value stored

    @property
    def threshold(self) -> int:
        return self.cloud.options.threshold

    def beats(self, kinds: tuple[str, ...]) -> list[dict]:
        ahead = 10 * self.threshold + 30
        skew = {"clock behind": -(self.threshold + 30), "clock ahead": ahead}
        return [
            {
                "topic": None if topic == "None" else topic,
                "host": None if host == "None" else host,
                "skew": skew.get(kind, 0),
            }
            for key, kind in self.kinds.items()
            if kind in kinds
            for topic, host in [key.split(":", 1)]
        ]

    def write(self, writer: NovaWriter, kinds: tuple[str, ...]) -> None:
        beats = self.beats(kinds)
        for beat, moment in zip(beats, writer.write(self.conf, beats)):
            self.written[f"{beat['topic']}:{beat['host']}"] = moment


def listed_rows(cloud: random_clouds.Cloud) -> list[dict]:
    return [
        r for rows in cloud.services.values() for r in rows if r["deleted"] == 0 and r["binary"] not in API_BINARIES
    ]


def make_cloud(seed: int, deployment, workdir: pathlib.Path) -> McCloud:
    rng = random.Random(seed)
    cloud = random_clouds.generate(seed)
    down, interval = rng.choice(TIMINGS)
    cloud = dataclasses.replace(
        cloud, options=dataclasses.replace(cloud.options, service_down_time=down, report_interval=interval)
    )
    server = Memcached().start()
    conf = deployment.write_conf(workdir / f"nova-{seed}.conf", cloud.options)
    conf.write_text(
        conf.read_text().replace("[DEFAULT]\n", "[DEFAULT]\nservicegroup_driver = mc\n", 1)
        + f"[cache]\nenabled = true\nbackend = {BACKENDS[seed % len(BACKENDS)]}\n"
        f"memcache_servers = {server.server}\n"
    )
    keys = sorted({f"{r['topic']}:{r['host']}" for r in listed_rows(cloud)})
    return McCloud(cloud, conf, server, {key: rng.choice(KINDS) for key in keys})


def last_seen(text: str) -> dict[tuple, float]:
    return {
        (s.labels["cell"], s.labels["binary"] or None, s.labels["host"] or None): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "service_last_seen_timestamp_seconds"
    }


def cache_up(text: str) -> float | None:
    return next(
        (
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "service_exporter_database_up" and s.labels["cell"] == "(memcached)"
        ),
        None,
    )


def compare(mc: McCloud, deployment, judge, writer) -> tuple[collections.Counter, list[str]]:
    cloud = mc.cloud
    deployment.load(cloud)
    mc.write(writer, ("fresh", "clock behind", "clock ahead"))
    fresh_at = time.monotonic()
    nova = nova_side.verdicts(judge.ask(mc.conf, datetime.datetime.utcnow()))
    seen, records = exporter_side.listed(mc.conf, datetime.datetime.utcnow())
    text = exporter_side.scraped(mc.conf, datetime.datetime.utcnow())
    took = time.monotonic() - fresh_at
    assert took < mc.threshold - MARGIN, (
        f"judging took {took:.1f} s: fresh heartbeats may have expired between the two sides ({cloud.describe()})"
    )

    def context(key):
        return repr(cloud.row(*key))

    problems = [f"list: {d}" for d in differences(nova, exporter_side.from_listing(records), ALL_FIELDS, context)]
    labels = [dataclasses.replace(v, disabled_reason=v.disabled_reason or "") for v in nova]
    problems += [
        f"/metrics: {d}" for d in differences(labels, exporter_side.from_exposition(text), METRIC_FIELDS, context)
    ]
    if cache_up(text) != 1.0:
        problems.append(f'service_exporter_database_up{{cell="(memcached)"}} is {cache_up(text)}')
    stamps = last_seen(text)
    counts = collections.Counter(rows=len(nova))
    for r in records:
        key = f"{cloud.row(r['cell'], r['binary'], r['host'])['topic']}:{r['host']}"
        kind = mc.kinds[key]
        counts[kind] += 1
        counts[f"{kind}, forced down" if r["forced_down"] else kind + ", not forced down"] += 1
        moment = mc.written.get(key) if kind != "expired" and kind != "clock behind" else None
        age = None if moment is None else (seen - moment) / datetime.timedelta(seconds=1)
        stamp = stamps.get((r["cell"], r["binary"], r["host"]))
        expected = None if moment is None else (moment - EPOCH).total_seconds()
        if (
            r["heartbeat_age_seconds"] != age
            or (stamp is None) != (expected is None)
            or (stamp is not None and abs(stamp - expected) > 1e-6)
        ):
            problems.append(
                f"{r['cell']} {r['binary']} {r['host']} ({kind}): age {r['heartbeat_age_seconds']} "
                f"(expected {age}), last seen {stamp} (expected {expected})"
            )
    return counts, [
        f"{cloud.describe()} backend={mc.conf.read_text().split('backend = ')[1].split()[0]}: {p}" for p in problems
    ]


def test_exporter_agrees_with_nova_mc_driver(nova_deployment, mc_judge, writer, tmp_path, tally):
    started = time.monotonic()
    clouds = [make_cloud(seed, nova_deployment, tmp_path) for seed in range(FIRST_SEED, FIRST_SEED + CLOUDS)]
    try:
        for mc in clouds:
            mc.write(writer, ("expired",))
        # The expiry is real: every "expired" heartbeat is older than its down time before anyone judges.
        time.sleep(max(mc.threshold for mc in clouds) + MARGIN)
        counts, failures = collections.Counter(), []
        for mc in clouds:
            cloud_counts, problems = compare(mc, nova_deployment, mc_judge, writer)
            counts += cloud_counts
            failures += problems
    finally:
        for mc in clouds:
            mc.server.stop()
    tally["clouds"] += len(clouds)
    tally["rows"] += counts["rows"]
    print(
        f"\nmc driver: {len(clouds)} clouds, {counts['rows']} rows in {time.monotonic() - started:.1f} s: "
        + ", ".join(f"{kind} {counts[kind]}" for kind in KINDS)
    )
    assert not failures, f"{len(failures)} disagreements:\n" + "\n".join(failures[:20])
    assert counts["rows"] >= 500, counts
    for kind in KINDS:  # every kind is compared, forced down or not
        assert counts[f"{kind}, forced down"] and counts[f"{kind}, not forced down"], counts
