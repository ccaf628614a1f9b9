"""The fast writer of /metrics gives the very bytes of prometheus_client's generate_latest."""

from __future__ import annotations

import gzip
import threading
import urllib.request
import zlib

import pytest
from cloud import insert_services, service
from helpers import API_CELL, CellHealth, nova_settings, nova_snapshot, served
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from isal import isal_zlib
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from openstack_service_exporter import exposition as exposition_module
from openstack_service_exporter.collector import families
from openstack_service_exporter.config import Settings
from openstack_service_exporter.exposition import Renderer, escape, exposition
from openstack_service_exporter.snapshot import Snapshot
from openstack_service_exporter.sources.base import MICROS
from openstack_service_exporter.sources.nova import NovaConfig
from openstack_service_exporter.sources.nova.verdict import ServiceRow

NOW = 1_351_518_131 * MICROS + 123_456  # a render instant with microseconds
NASTY = ['quote " in', "back\\slash", "new\nline", 'all \\" \n\\n', "ünïcødé ☃ 雪", "", "{braces}=,", " "]


class _Registry:
    def __init__(self, metric_families):
        self._families = metric_families

    def collect(self):
        return self._families


def reference(snapshot: Snapshot, settings: Settings) -> bytes:
    """prometheus_client's own rendering of the collector's families."""
    return generate_latest(_Registry(families(snapshot, settings, NOW, "mysqldb")))


def fast(snapshot: Snapshot, settings: Settings) -> bytes:
    return b"".join(exposition(snapshot, settings, NOW, "mysqldb"))


def row(
    cell="cell1",
    id_=1,
    host="cmp-az1-r01-n01.region1.example.net",
    binary="nova-compute",
    topic="compute",
    report_count=7,
    disabled=False,
    disabled_reason=None,
    forced_down=False,
    version=66,
    uuid="6f3c0b9e-8a1d-4c52-9a43-2f1e7d5b0c11",
    created_at=NOW - 86_400 * MICROS,
    updated_at=None,
    last_seen_up=NOW - 3 * MICROS,
) -> ServiceRow:
    return ServiceRow(
        cell,
        id_,
        host,
        binary,
        topic,
        report_count,
        disabled,
        disabled_reason,
        forced_down,
        version,
        uuid,
        created_at,
        updated_at,
        last_seen_up,
    )


def snapshot_of(
    rows: list[ServiceRow], host_zones: dict[str, str] | None = None, config: NovaConfig | None = None
) -> Snapshot:
    cells = [CellHealth(c, True, 0.012, skew=-0.25, duplicates=1) for c in dict.fromkeys(r.cell for r in rows)]
    return nova_snapshot(
        NOW - 5000,
        rows,
        cells + [CellHealth("down", False, 2.5, "timed out")],
        api=CellHealth(API_CELL, True, 0.003),
        host_zones=host_zones,
        zones_known=True,
        config=config,
    )


def assert_same(snapshot: Snapshot, settings: Settings) -> bytes:
    ours, theirs = fast(snapshot, settings), reference(snapshot, settings)
    assert ours == theirs
    return ours


def test_nasty_label_values_null_heartbeats_and_a_prefix():
    rows = [
        row(cell=text, id_=i, host=text, binary=text, topic=text, disabled_reason=text, uuid=text)
        for i, text in enumerate(NASTY)
    ]
    rows += [
        row(host=None, binary=None, topic=None, uuid=None, version=None, id_=20),  # NULL keys
        row(host="never", created_at=None, last_seen_up=None, id_=21),  # no heartbeat at all
        row(host="created-only", last_seen_up=None, id_=22),  # judged by created_at
        row(host="future", last_seen_up=NOW + 90 * MICROS, id_=23),  # negative age
        row(host="forced", forced_down=True, disabled=True, disabled_reason="maint", id_=24),
        row(host="nulls", forced_down=None, disabled=None, id_=25),
        row(host="big", report_count=31_536_000_123, last_seen_up=NOW - 2_000_000 * MICROS, id_=26),
        row(host="zero", report_count=0, last_seen_up=NOW - 5000, id_=27),  # age 0.0
        row(host="odd-us", last_seen_up=NOW - 1_234_567, id_=28),
    ]
    zones = {text: text for text in NASTY} | {"big": "az1,az2"}
    for prefix in ("", "openstack_nova_"):
        body = assert_same(snapshot_of(rows, zones), Settings(metric_prefix=prefix))
        text = body.decode()
        assert f"{prefix}service_up{{" in text and '\\"' in text and "\\\\" in text and "\\n" in text


def test_parsed_families_equal_prometheus_clients_own():
    rows = [row(id_=i, host=f"h{i}-{NASTY[i % len(NASTY)]}", report_count=i * 1_000_003) for i in range(50)]
    snap = snapshot_of(rows)
    ours = list(text_string_to_metric_families(fast(snap, Settings()).decode()))
    theirs = list(text_string_to_metric_families(reference(snap, Settings()).decode()))
    assert ours == theirs
    by_name = {f.name: f for f in ours}
    assert len(by_name["service_up"].samples) == 50
    assert by_name["service_reports"].samples[3].value == 3_000_009


def test_families_written_in_slices(monkeypatch):
    monkeypatch.setattr(exposition_module, "SLICE", 7)  # 50 services: slices of 7 and a last one of 1
    rows = [
        row(
            id_=i,
            host=f"h{i}-{NASTY[i % len(NASTY)]}",
            last_seen_up=None if i % 3 else NOW - i * MICROS,
            created_at=None if i % 6 == 1 else NOW - 86_400 * MICROS,
        )
        for i in range(50)
    ]
    chunks = list(exposition(snapshot_of(rows), Settings(), NOW, "mysqldb"))
    assert len(chunks) > 7 * 8
    assert b"".join(chunks) == reference(snapshot_of(rows), Settings())
    gzipped = Renderer(1).body(snapshot_of(rows), Settings(), NOW, "mysqldb", gzip=True)
    assert one_gzip_member(gzipped) == reference(snapshot_of(rows), Settings())


def test_empty_cloud():
    assert_same(snapshot_of([]), Settings())


def test_escape_is_prometheus_clients():
    for text in NASTY:
        body = assert_same(snapshot_of([row(host=text)]), Settings())
        assert f'host="{escape(text)}"'.encode() in body


DEFLATES = [zlib, isal_zlib]  # isal comes with the [fast] extra that the tests install


def one_gzip_member(body: list[bytes]) -> bytes:
    """The text of a body that must be exactly one gzip member, nothing before or after it."""
    reader = zlib.decompressobj(31)
    text = reader.decompress(b"".join(body))
    assert reader.eof and reader.unused_data == b""
    return text


@pytest.mark.parametrize("deflate", DEFLATES, ids=lambda m: m.__name__)
def test_renderer_gzip_is_one_member_of_the_same_bytes_and_shared_per_reading(deflate):
    snap = snapshot_of([row(id_=i, host=f"h{i}") for i in range(300)])
    renderer = Renderer(1, deflate)
    plain = renderer.body(snap, Settings(), NOW, "mysqldb", gzip=False)
    assert b"".join(plain) == reference(snap, Settings())
    first = renderer.body(snap, Settings(), NOW, "mysqldb", gzip=True)
    later = renderer.body(snap, Settings(), NOW + 7 * MICROS, "mysqldb", gzip=True)  # a scrape of the same reading
    assert one_gzip_member(first) == gzip.decompress(b"".join(first)) == reference(snap, Settings())
    assert b"service_exporter_snapshot_age_seconds 7.005" in one_gzip_member(later)
    assert all(a is b for a, b in zip(first[:-2], later[:-2]))  # the services were compressed once
    other = snapshot_of([row(id_=1, host="other")])
    assert one_gzip_member(renderer.body(other, Settings(), NOW, "mysqldb", gzip=True)) == reference(other, Settings())
    # A late scrape of the previous reading, after the next one was rendered, is not rendered again;
    # a third reading pushes the first out.
    assert (
        renderer.body(snap, Settings(), NOW, "mysqldb", gzip=True)[0] is first[0]
    )  # the shared part: the gzip header and the services
    third = snapshot_of([row(id_=1, host="third")])
    renderer.body(third, Settings(), NOW, "mysqldb", gzip=True)
    again = renderer.body(snap, Settings(), NOW, "mysqldb", gzip=True)
    assert again[0] is not first[0] and one_gzip_member(again) == reference(snap, Settings())


def test_gzip_body_of_an_empty_cloud():
    snap = snapshot_of([])
    for deflate in DEFLATES:
        assert one_gzip_member(Renderer(1, deflate).body(snap, Settings(), NOW, "mysqldb", gzip=True)) == reference(
            snap, Settings()
        )


def test_concurrent_scrapes_of_one_reading_share_one_rendering():
    snap = snapshot_of([row(id_=i, host=f"h{i}") for i in range(2000)])
    renderer = Renderer(1)
    bodies: list[list[bytes]] = []
    barrier = threading.Barrier(8)

    def scrape():
        barrier.wait()
        bodies.append(renderer.body(snap, Settings(), NOW, "mysqldb", gzip=True))

    threads = [threading.Thread(target=scrape) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(bodies) == 8
    assert len({id(body[0]) for body in bodies}) == 1  # one shared part: rendered and compressed once
    assert {one_gzip_member(body) for body in bodies} == {reference(snap, Settings())}


text_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
maybe_text = st.none() | text_values | st.sampled_from(NASTY)
seconds = st.integers(min_value=0, max_value=4_102_444_800)  # 1970 .. 2100, whole seconds as Nova's DATETIME
stamp = st.none() | seconds.map(lambda s: s * MICROS) | st.integers(min_value=0, max_value=4_102_444_800 * MICROS)
rows_strategy = st.lists(
    st.builds(
        ServiceRow,
        cell=st.sampled_from(["", "cell1", 'c"2']),
        id=st.integers(1, 10**6),
        host=maybe_text,
        binary=maybe_text,
        topic=st.none() | st.sampled_from(["compute", "conductor"]) | text_values,
        report_count=st.integers(0, 10**12),
        disabled=st.none() | st.booleans(),
        disabled_reason=maybe_text,
        forced_down=st.none() | st.booleans(),
        version=st.none() | st.integers(-1, 10**6),
        uuid=maybe_text,
        created_at=stamp,
        updated_at=stamp,
        last_seen_up=stamp,
    ),
    max_size=25,
)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=rows_strategy,
    zones=st.dictionaries(text_values, text_values, max_size=5),
    prefix=st.sampled_from(["", "nova_", "os:svc_"]),
    down_time=st.integers(1, 10**6),
)
def test_property_same_bytes_as_generate_latest(rows, zones, prefix, down_time):
    assert_same(snapshot_of(rows, zones, NovaConfig(service_down_time=down_time)), Settings(metric_prefix=prefix))


def test_scrape_over_http_is_generate_latest_plain_and_gzip(mariadb, new_db):
    """The real app on a real database: the body served is prometheus_client's rendering of the
    same reading, with and without gzip."""
    db = new_db("services")
    insert_services(
        mariadb,
        db,
        [service(f"cmp-{i:03d}.example.net") for i in range(40)]
        + [
            service('odd "host" \\ name', "nova-conductor", disabled=1, disabled_reason="line1\nline2"),
            service("never-seen", last_seen_up=None),
        ],
    )
    settings = nova_settings(database_connection=mariadb.url(db), metric_prefix="nova_")
    with served(settings, min_interval=3600) as (base, shared):
        bodies = {}
        # Accept-Encoding -> gzipped
        for encoding, gzipped in {
            "identity": False,
            "gzip;q=0, identity": False,
            "gzip": True,
            "br;q=1.0, gzip;q=0.8, *;q=0.1": True,
        }.items():
            request = urllib.request.Request(
                base + "/metrics", headers={"Accept-Encoding": encoding, "X-Prometheus-Scrape-Timeout-Seconds": "10"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                if gzipped:
                    assert int(response.headers["Content-Length"]) == len(raw)
                bodies[encoding] = one_gzip_member([raw]) if gzipped else raw
                assert response.headers.get("Content-Encoding") == ("gzip" if gzipped else None)
        snap = shared.get()  # the reading both scrapes showed (min_interval keeps it)
    assert shared.readings == 1

    # The render instant differs per scrape: compare the lines that do not depend on it.
    def stable(body: bytes) -> list[bytes]:
        return [line for line in body.splitlines() if b"snapshot_age_seconds" not in line]

    expected = generate_latest(_Registry(families(snap, settings, snap.now, "pymysql")))  # served()'s driver
    assert all(stable(body) == stable(expected) for body in bodies.values()) and len(bodies) == 4
    assert b'host="odd \\"host\\" \\\\ name"' in bodies["gzip"]


@hsettings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.none()
        | st.integers(min_value=-(10**17), max_value=10**17)
        | st.sampled_from([0, -1, 1, MICROS, -MICROS, 1_234_567, 10**15]),
        max_size=30,
    ),
    odd=st.sampled_from([[], [0.0], [-0.0], [-0.0, 0.0], [2.5, float("nan"), float("inf")]]),
)
def test_scaled_texts_are_floatToGoStrings(values, odd):
    """Seconds from microseconds, each distinct value once; floats (not what the queries give) one
    by one, so that -0.0 keeps its sign beside 0."""
    from prometheus_client.utils import floatToGoString

    from openstack_service_exporter.exposition import _scaled

    for column in (values, values + odd):
        assert _scaled(column) == [None if v is None else floatToGoString(v / MICROS) + "\n" for v in column]


@given(values=st.lists(st.none() | st.text() | st.integers() | st.sampled_from(NASTY + ["nul\0in", "\0"]), max_size=20))
def test_label_columns_are_escaped_like_prometheus_client(values):
    from openstack_service_exporter.exposition import _column

    assert _column(values) == [escape("" if v is None else str(v)) for v in values]


@hsettings(max_examples=500, deadline=None)
@given(
    counts=st.lists(
        st.integers(min_value=-(10**3), max_value=2**60)
        | st.sampled_from([0, 1, 999_999, 1_000_000, 1_000_001, 10**7, 2**53 - 1, 2**53, 2**53 + 1, True]),
        max_size=20,
    )
)
def test_count_texts_are_floatToGoStrings(counts):
    from prometheus_client.utils import floatToGoString

    from openstack_service_exporter.exposition import _count_texts

    assert _count_texts(counts) == [floatToGoString(n) + "\n" for n in counts]


def test_several_projects_in_one_exposition():
    """Each family once, with every project's lines; a family only some projects have (reports,
    forced down) and the per-project info labels, byte for byte as prometheus_client writes them."""
    from openstack_service_exporter.snapshot import DatabaseHealth, Reading
    from openstack_service_exporter.sources.cinder import CinderConfig, CinderRow

    nova = snapshot_of([row(id_=i, host=NASTY[i]) for i in range(len(NASTY))])
    cinder_rows = [
        CinderRow(
            i,
            f"st{i}@{NASTY[i]}",
            "cinder-volume",
            "cinder-volume",
            i,
            i % 2,
            NASTY[i],
            NASTY[i] or None,
            f"u{i}",
            NASTY[-i],
            i % 3 == 0,
            "enabled",
            None,
            NOW - 86_400 * MICROS,
            None if i == 2 else NOW - i * MICROS,
        )
        for i in range(len(NASTY))
    ]
    cinder = Reading(
        CinderConfig("sqlite://", service_down_time=3),
        cinder_rows,
        [DatabaseHealth("cinder", "", True, 0.01, skew=0.0, duplicates=2)],
    )
    both = Snapshot(now=nova.now, readings=nova.readings + [cinder])
    for prefix in ("", "os_"):
        text = assert_same(both, Settings(metric_prefix=prefix)).decode()
        assert text.count(f"# TYPE {prefix}service_up gauge") == 1
        assert f'{prefix}service_reports_total{{binary="cinder-volume"' in text
        assert 'project="cinder"' in text and 'frozen="true"' in text
