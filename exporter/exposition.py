"""The /metrics body, with the per-service families written straight to text.

prometheus_client builds a Sample (a namedtuple with a dict of labels) for each of the seven lines a
service has, then sorts, escapes and formats each dict again; at 10,000 services that is most of a
scrape. Here each service's label set is escaped and joined once, and its seven lines reuse it.

The bytes are those of prometheus_client's generate_latest, exactly (tests/test_exposition.py
compares them): the HELP and TYPE lines are generate_latest's own, from the same families with no
samples; label names are sorted and values escaped (\\, \\n, ") as it does; values go through its
floatToGoString. The health families, a few lines per database, still go through generate_latest.
"""
from __future__ import annotations

import zlib
from math import copysign
from typing import Callable, Iterable, Iterator

from prometheus_client.exposition import generate_latest
from prometheus_client.utils import floatToGoString

from .collector import SERVICE_GAUGES, SERVICE_LABELS, health_families, judged_services, service_families
from .config import Settings
from .snapshot import Snapshot
from .verdict import Judged

# The label names written below, in collector.service_families' order (checked at import).
_SERVICE_NAMES = ("cell", "binary", "host", "zone")
_INFO_NAMES = _SERVICE_NAMES + ("topic", "uuid", "version", "disabled_reason")

if SERVICE_LABELS != _SERVICE_NAMES:
    raise ImportError(f"exposition writes labels {_SERVICE_NAMES}, the collector has {SERVICE_LABELS}")

# prometheus_client's suffixes of sample names, by family type (generate_latest's "munging").
_SAMPLE_SUFFIX = {"gauge": "", "counter": "_total", "info": "_info"}


class _Families:
    """What generate_latest needs from a registry: a collect() over ready families."""

    def __init__(self, metric_families: Iterable):
        self._families = list(metric_families)

    def collect(self):
        return self._families


def escape(value: str) -> str:
    """A label value as generate_latest escapes it."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class _Escaper:
    """escape(), remembering the values that repeat (cells, binaries, zones, topics)."""

    def __init__(self):
        self._seen: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        done = self._seen.get(value)
        if done is None:
            done = self._seen[value] = escape(value)
        return done


def _label_sets(services: list[Judged], esc: Callable[[str], str] | None) -> tuple[list[str], list[str]]:
    """Each service's label sets, in generate_latest's order (names sorted), ending in '} ' ready
    for the value: the four service labels, and those of the _info family."""
    base, info = [], []
    for j in services:
        r = j.row
        # NOTE: the _info values are those collector.service_families gives InfoMetricFamily.
        values = (r.binary or "", r.cell, r.host or "", j.zone, r.disabled_reason or "", r.topic or "",
                  r.uuid or "", "" if r.version is None else str(r.version))
        if esc is not None:
            values = tuple(map(esc, values))
        binary, cell, host, zone, reason, topic, uuid, version = values
        base.append(f'binary="{binary}",cell="{cell}",host="{host}",zone="{zone}"}} ')
        info.append(f'binary="{binary}",cell="{cell}",disabled_reason="{reason}",host="{host}",'
                    f'topic="{topic}",uuid="{uuid}",version="{version}",zone="{zone}"}} ')
    return base, info


def _escaped_label_sets(services: list[Judged]) -> tuple[list[str], list[str]]:
    base, info = _label_sets(services, None)
    joined = "".join(info)  # every value is in an _info label set
    if joined.count('"') != 2 * len(_INFO_NAMES) * len(info) or "\\" in joined or "\n" in joined:
        base, info = _label_sets(services, _Escaper())  # some value needs escaping: the slow way
    return base, info


_ZERO, _MINUS_ZERO = floatToGoString(0.0), floatToGoString(-0.0)


def _texts(values: list) -> list[str | None]:
    """floatToGoString of each value (None stays None), each distinct value formatted once: Nova's
    DATETIME columns have whole seconds, so heartbeats and ages repeat across services."""
    table = {v: None if v is None else floatToGoString(v) for v in set(values)}
    if 0.0 not in table:
        return [table[v] for v in values]
    # 0.0 and -0.0 are one key but two texts
    return [table[v] if v else None if v is None else _MINUS_ZERO if copysign(1.0, v) < 0 else _ZERO
            for v in values]


def _lines(name: str, label_sets: list[str], texts: Iterable[str | None]) -> str:
    head = name + "{"
    return "".join([f"{head}{labels}{text}\n" for labels, text in zip(label_sets, texts) if text is not None])


def _headers(prefix: str) -> list[tuple[str, str]]:
    """(HELP and TYPE lines, sample name) of each per-service family, in the collector's order:
    generate_latest's own text for the same family without samples."""
    out = []
    for family in service_families([], prefix):
        header = generate_latest(_Families([family])).decode()
        out.append((header, family.name + _SAMPLE_SUFFIX[family.type]))
    return out


def service_exposition(services: list[Judged], prefix: str) -> Iterator[bytes]:
    """The per-service families as text, one chunk of bytes per family."""
    base, info = _escaped_label_sets(services)
    headers = _headers(prefix)
    for spec, (header, name) in zip(SERVICE_GAUGES, headers):
        yield (header + _lines(name, base, _texts(list(map(spec.value, services))))).encode()
    (reports_header, reports_name), (info_header, info_name) = headers[len(SERVICE_GAUGES):]
    yield (reports_header + _lines(reports_name, base, _texts([j.row.report_count for j in services]))).encode()
    one = floatToGoString(1.0)
    yield (info_header + _lines(info_name, info, [one] * len(services))).encode()


def exposition(snapshot: Snapshot, settings: Settings, render_now: int, driver: str) -> Iterator[bytes]:
    """The whole /metrics body in chunks: b"".join() of it is generate_latest over
    collector.families(snapshot, settings, render_now, driver)."""
    yield from service_exposition(judged_services(snapshot, settings), settings.metric_prefix)
    yield generate_latest(_Families(health_families(snapshot, settings, settings.metric_prefix, render_now, driver)))


def gzipped(chunks: Iterable[bytes], level: int) -> list[bytes]:
    """One gzip stream over the chunks, each compressed as it comes, so that the plain text of a
    large cloud is never whole in memory."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: gzip header and trailer
    out = [compressor.compress(chunk) for chunk in chunks]
    out.append(compressor.flush())
    return [piece for piece in out if piece]
