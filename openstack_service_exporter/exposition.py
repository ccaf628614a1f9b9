"""The /metrics body, with the per-service families written straight to text.

prometheus_client builds a Sample (a namedtuple with a dict of labels) for each of the seven lines a
service has, then sorts, escapes and formats each dict again; at 10,000 services that is most of a
scrape. Here each service's label set is escaped and joined once, and its seven lines reuse it; the
values and label columns are made a whole column at a time, in C where it can (map, join, a table of
each distinct value's text), so that little Python runs per line.

The bytes are those of prometheus_client's generate_latest, exactly (tests/test_exposition.py
compares them): the HELP and TYPE lines are generate_latest's own, from the same families with no
samples; label names are sorted and values escaped (\\, \\n, ") as it does; values go through its
floatToGoString. The health families, a few lines per database, still go through generate_latest.

Renderer serves the bodies: gzip (ISA-L's deflate when installed), each reading's services
rendered and compressed once for all the scrapes that show it.
"""

from __future__ import annotations

import struct
import threading
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain, compress, repeat
from operator import itemgetter
from typing import Any, Literal, Protocol, cast, overload

from prometheus_client import utils as _prometheus_utils
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric

from .collector import Groups, health_families, judged_services, service_families
from .config import Settings
from .families import COUNT, FLAG, SERVICE_LABELS, of_groups
from .snapshot import Snapshot
from .sources.base import MICROS, InfoLabel, Judged

# prometheus_client's own function, typed here: prometheus_client leaves it unannotated.
floatToGoString: Callable[[float], str] = _prometheus_utils.floatToGoString


class _Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self, mode: int = ..., /) -> bytes: ...


class Deflate(Protocol):
    """What the Renderer uses of zlib, or of ISA-L's isal_zlib, which has zlib's interface."""

    @property
    def DEFLATED(self) -> int: ...

    @property
    def Z_SYNC_FLUSH(self) -> int: ...

    def crc32(self, data: bytes, value: int = ..., /) -> int: ...

    def compressobj(self, level: int = ..., method: int = ..., wbits: int = ..., /) -> _Compressor: ...


DEFLATE: Deflate
try:  # ISA-L's deflate: five times faster than zlib's at level 1, 12% smaller (bench/ANALYSIS.md; [fast] extra)
    from isal import isal_zlib as DEFLATE
except ImportError:
    DEFLATE = zlib

# prometheus_client's suffixes of sample names, by family type (generate_latest's "munging").
_SAMPLE_SUFFIX = {"gauge": "", "counter": "_total", "info": "_info"}

# Services per chunk of text: a chunk is compressed (or sent) and dropped before the next is made,
# so that at 100,000 services the text of a whole family (14 MB, and its 100,000 lines) never is.
SLICE = 4096


class _Families:
    """What generate_latest needs from a registry: a collect() over ready families."""

    def __init__(self, metric_families: Iterable[Metric]):
        self._families = list(metric_families)

    def collect(self) -> list[Metric]:
        return self._families


def render(metric_families: Iterable[Metric]) -> bytes:
    """prometheus_client's own rendering of ready families: the reference the fast writer matches."""
    return generate_latest(_Families(metric_families))


def escape(value: str) -> str:
    """A label value as generate_latest escapes it."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class _Escaper:
    """escape(), remembering the values that repeat (cells, binaries, zones, topics)."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        done = self._seen.get(value)
        if done is None:
            done = self._seen[value] = escape(value)
        return done


def _column(values: list[Any]) -> list[str]:
    """A label's values as text: NULL as "", ints as digits, escaped when any of them needs it.

    Whole-list operations in C where it can (this runs for eight columns of every service at every
    reading): the column is escaped as one text joined on NUL, which no escape touches, and split
    again; one value at a time only when a value holds a NUL itself."""
    if None in values:
        values = ["" if v is None else v for v in values]
    try:
        joined = "".join(values)
    except TypeError:  # not all text: the version column's ints
        values = list(map(str, values))
        joined = "".join(values)
    if "\\" not in joined and '"' not in joined and "\n" not in joined:
        return values
    if "\0" in joined:
        return list(map(_Escaper(), values))
    return escape("\0".join(values)).split("\0")


def _field(name: str) -> itemgetter[int]:
    """A Judged field as a getter that map() runs in C."""
    return itemgetter(Judged._fields.index(name))


_ROW, _CELL, _BINARY, _HOST, _ZONE = (_field(n) for n in ("row", "cell", "binary", "host", "zone"))


def _label_sets(names: list[str], constants: dict[str, str]) -> Callable[..., list[str]]:
    """A function of one column per label name not in `constants` (in sorted order), giving each
    service's label set in generate_latest's order (names sorted) with the constants written in,
    ending in '} ' ready for the value.

    NOTE: made as a comprehension of one f-string, compiled here as namedtuple compiles its class:
    an f-string is built by one opcode, three times faster per line than str.format and twice as
    fast as printf-style formatting, and this runs for every service at every reading. Label names
    are identifiers (checked); the values and the constants are variables of it, never its text."""
    if not all(name.isidentifier() for name in names):
        raise ValueError(f"label names must be identifiers: {names}")
    ordered = sorted(names)
    columns = [n for n in ordered if n not in constants]
    fields = ",".join(f'{n}="{{k_{n}}}"' if n in constants else f'{n}="{{v_{n}}}"' for n in ordered)
    values = ", ".join(f"v_{n}" for n in columns) + ("," if len(columns) == 1 else "")
    arguments = ", ".join(f"c_{n}" for n in columns)
    source = (
        "def label_sets(" + arguments + "):\n"
        "    return [f'" + fields + "}} ' for " + values + " in zip(" + arguments + ")]\n"
    )
    namespace: dict[str, Any] = {f"k_{n}": escape(v) for n, v in constants.items()}
    exec(source, namespace)  # noqa: S102 - the text is made above from identifiers only
    label_sets: Callable[..., list[str]] = namespace["label_sets"]
    return label_sets


class _Labels:
    """One project's services' label values, escaped, and their label sets in generate_latest's
    order (names sorted), each ending in '} ' ready for the value."""

    def __init__(self, project: str, services: list[Judged], rows: list[Any], info_labels: Iterable[InfoLabel]):
        columns = {
            "cell": _column(list(map(_CELL, services))),
            "binary": _column(list(map(_BINARY, services))),
            "host": _column(list(map(_HOST, services))),
            "zone": _column(list(map(_ZONE, services))),
        }
        constants = {"project": project}
        # The common families use these: made once. The _info ones are made a slice at a time, when written.
        self.base = _label_sets(list(SERVICE_LABELS), constants)(*(columns[n] for n in sorted(columns)))
        # NOTE: the _info values are those collector.service_families gives InfoMetricFamily.
        extras = {label.name: _column(list(map(label.value, rows))) for label in info_labels}
        names = list(SERVICE_LABELS) + list(extras)
        self._info_sets = _label_sets(names, constants)
        self._info_columns = [extras[n] if n in extras else columns[n] for n in sorted(names) if n != "project"]

    def info(self, start: int, stop: int) -> list[str]:
        return self._info_sets(*(col[start:stop] for col in self._info_columns))


_ONE, _ZERO = floatToGoString(1.0) + "\n", floatToGoString(0.0) + "\n"


def _flags(values: Iterable[Any]) -> list[str]:
    """The text of a 0/1 gauge by truth value (a NULL flag is 0, as in the collector)."""
    return [_ONE if v else _ZERO for v in values]


_INT_OR_NULL = {int, type(None)}


def _scaled(values: list[Any]) -> list[str | None]:
    """floatToGoString(v / MICROS) and a newline for each value (None stays None: no sample), each
    distinct value formatted once: DATETIME columns have whole seconds, so heartbeats and
    ages repeat across services."""
    if not set(map(type, values)) <= _INT_OR_NULL:  # not the integers the queries give: one by one
        # NOTE: also what keeps -0.0 apart from 0, which are one key of a dict
        return [None if v is None else floatToGoString(v / MICROS) + "\n" for v in values]
    table: dict[int | None, str | None] = {
        v: None if v is None else floatToGoString(v / MICROS) + "\n" for v in set(values)
    }
    return list(map(table.__getitem__, values))


_EXACT = 2**53  # integers below this are floats exactly


# Go's exponent of an int written with n digits (from a million up, n >= 7), newline included.
_GO_EXPONENT = [f"e+{n - 1:02d}\n" for n in range(len(str(_EXACT)) + 1)]


def _count_texts(counts: list[Any]) -> list[str]:
    """floatToGoString of each count and a newline, three times faster for the ints they are: an
    int below 2**53 is exactly a float whose repr is its digits and ".0", which floatToGoString
    writes in Go's exponent form from a million up ("3.1536e+06": the digits as a mantissa without
    its trailing zeros). Anything else (bools, floats, NULL from a broken row) goes through
    floatToGoString one by one."""
    if not counts or set(map(type, counts)) != {int} or min(counts) < 0 or max(counts) >= _EXACT:
        return [floatToGoString(n) + "\n" for n in counts]
    return [
        f"{n}.0\n" if n < 1_000_000 else f"{(d := str(n))[0]}.{d[1:]}".rstrip("0.") + _GO_EXPONENT[len(d)]
        for n in counts
    ]


def _lines(head: str, label_sets: Sequence[str], texts: Sequence[str | None]) -> str:
    """`head` + label set + value text, for each service that has a value; joined in C."""
    if None in texts:
        keep = [t is not None for t in texts]
        label_sets, texts = list(compress(label_sets, keep)), list(compress(texts, keep))
    # No None is left in texts.
    return "".join(chain.from_iterable(zip(repeat(head), label_sets, cast("Sequence[str]", texts))))


def _sliced(
    name: str, label_sets: Callable[[int, int], list[str]] | list[str], texts: Sequence[str | None]
) -> Iterator[bytes]:
    """A family's sample lines, SLICE services at a time (`label_sets(start, stop)` or a list)."""
    head = name + "{"
    for start in range(0, len(texts), SLICE):
        stop = start + SLICE
        labels = label_sets(start, stop) if callable(label_sets) else label_sets[start:stop]
        yield _lines(head, labels, texts[start:stop]).encode()


def _headers(groups: Groups, prefix: str) -> list[tuple[str, str]]:
    """(HELP and TYPE lines, sample name) of each per-service family, in the collector's order:
    generate_latest's own text for the same family without samples."""
    out: list[tuple[str, str]] = []
    for family in service_families([(configured, []) for configured, _ in groups], prefix):
        header = generate_latest(_Families([family])).decode()
        out.append((header, family.name + _SAMPLE_SUFFIX[family.type]))
    return out


# A family's values as texts, by how they are written (the collector's _sample, a column at a time).
_TEXTS: dict[str, Callable[[list[Any]], Sequence[str | None]]] = {
    FLAG: _flags,
    COUNT: _count_texts,
}


def service_exposition(groups: Groups, prefix: str) -> Iterator[bytes]:
    """The per-service families as text: each family's HELP and TYPE, then its lines, project by
    project, in slices."""
    labels: list[_Labels] = []
    rows: list[list[Any]] = []
    for configured, services in groups:
        own = list(map(_ROW, services))
        rows.append(own)
        labels.append(_Labels(configured.source.project, services, own, configured.source.info_labels))
    headers = _headers(groups, prefix)
    families = of_groups(groups)
    for family, (header, name) in zip(families, headers):
        yield header.encode()
        for (configured, services), own, label in zip(groups, rows, labels):
            values = family.values(configured.source.project, services, own)
            if values is not None:
                yield from _sliced(name, label.base, _TEXTS.get(family.kind, _scaled)(values))
    info_header, info_name = headers[len(families)]
    yield info_header.encode()
    for (_, services), label in zip(groups, labels):
        yield from _sliced(info_name, label.info, [_ONE] * len(services))


def exposition(snapshot: Snapshot, settings: Settings, render_now: int, driver: str) -> Iterator[bytes]:
    """The whole /metrics body in chunks: b"".join() of it is generate_latest over
    collector.families(snapshot, settings, render_now, driver)."""
    yield from service_exposition(judged_services(snapshot), settings.metric_prefix)
    yield _health(snapshot, settings, render_now, driver)


# RFC 1952 member header: deflate, no flags, no time, unknown OS (the trailer is written per scrape).
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


class _Rendering:
    """One reading's per-service families as the first part of a gzip member, made once (under its
    own lock) for every scrape of that reading."""

    def __init__(self, snapshot: Snapshot):
        # NOTE: a weak reference: a reading kept here must not outlive its last scrape (at 100,000
        # services a Snapshot holds some 70 MB).
        self.snapshot = weakref.ref(snapshot)
        self.lock = threading.Lock()
        self.pieces: list[bytes] | None = None  # [gzip header and deflate blocks ending on a byte boundary]
        self.crc = 0  # CRC-32 and length of the text they hold
        self.size = 0


class Renderer:
    """/metrics bodies. Scrapes that show the same reading (coalesced by SharedReader) share one
    rendering and compression of its per-service families: ten concurrent scrapes cost one.

    The body is one gzip member: the shared deflate blocks of the services (flushed to a byte
    boundary, not final), then each scrape's own blocks for what depends on the scrape (the health
    families: snapshot age), then the trailer with the CRC-32 and length of the whole text. The plain
    text is not kept (at 100,000 services it would be 90 MB): a scrape without gzip renders it as it
    is sent.
    """

    def __init__(self, level: int, deflate: Deflate = DEFLATE):
        self.level = min(level, 3) if deflate is not zlib else level  # ISA-L's levels are 0-3
        self.deflate = deflate
        self._lock = threading.Lock()
        self._kept: list[_Rendering] = []  # newest last
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")

    @overload
    def body(
        self, snapshot: Snapshot, settings: Settings, render_now: int, driver: str, gzip: Literal[True]
    ) -> list[bytes]: ...

    @overload
    def body(
        self, snapshot: Snapshot, settings: Settings, render_now: int, driver: str, gzip: Literal[False]
    ) -> Iterator[bytes]: ...

    @overload
    def body(
        self, snapshot: Snapshot, settings: Settings, render_now: int, driver: str, gzip: bool
    ) -> Iterable[bytes]: ...

    def body(self, snapshot: Snapshot, settings: Settings, render_now: int, driver: str, gzip: bool) -> Iterable[bytes]:
        """The gzip body as a list of pieces; the plain one as an iterator of chunks, written as sent."""
        if not gzip:
            return exposition(snapshot, settings, render_now, driver)
        rendering = self._rendering(snapshot)
        with rendering.lock:  # a second scrape of the same reading waits for the first one's work
            if rendering.pieces is None:
                # NOTE: in one long-lived thread, whichever request asks: glibc gives each thread
                # its own heap (arena), and the transient text of a large cloud left in the heaps
                # of many request threads would add up in RSS.
                self._worker.submit(self._render, rendering, snapshot, settings).result()
        health = _health(snapshot, settings, render_now, driver)
        tail = self._raw()
        trailer = struct.pack(
            "<II", self.deflate.crc32(health, rendering.crc), (rendering.size + len(health)) & 0xFFFFFFFF
        )
        pieces = cast("list[bytes]", rendering.pieces)  # made above, if it was not before
        return pieces + [tail.compress(health) + tail.flush(), trailer]

    def _render(self, rendering: _Rendering, snapshot: Snapshot, settings: Settings) -> None:
        self._compress(rendering, service_exposition(judged_services(snapshot), settings.metric_prefix))

    def _raw(self) -> _Compressor:
        return self.deflate.compressobj(self.level, self.deflate.DEFLATED, -15)  # raw deflate: no wrapper

    def _compress(self, rendering: _Rendering, chunks: Iterable[bytes]) -> None:
        compressor, crc, size, pieces = self._raw(), 0, 0, [_GZIP_HEADER]
        for chunk in chunks:
            crc = self.deflate.crc32(chunk, crc)
            size += len(chunk)
            pieces.append(compressor.compress(chunk))
        # A sync flush ends the blocks on a byte boundary without a final block: the scrape's own
        # blocks can follow them in the same member.
        pieces.append(compressor.flush(self.deflate.Z_SYNC_FLUSH))
        # One piece, shared by every scrape of the reading: wsgiref sends each piece of a body with
        # its own system call, and a copy per scrape would cost each concurrent scrape the whole body.
        rendering.pieces, rendering.crc, rendering.size = [b"".join(pieces)], crc, size

    def _rendering(self, snapshot: Snapshot) -> _Rendering:
        with self._lock:
            for kept in self._kept:
                if kept.snapshot() is snapshot:
                    return kept
            rendering = _Rendering(snapshot)
            # Two readings are kept: while the scrapes of one are being answered, the next arrives.
            self._kept = self._kept[-1:] + [rendering]
            return rendering


def _health(snapshot: Snapshot, settings: Settings, render_now: int, driver: str) -> bytes:
    return generate_latest(_Families(health_families(snapshot, settings, settings.metric_prefix, render_now, driver)))
