"""Asks the exporter at a frozen instant, through its two outputs: `list --format json` and /metrics."""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import pathlib
import time

import freezegun
from helpers import EPOCH, SnapshotCollector, to_us
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from verdicts import Verdict, naive_iso, zones

from openstack_service_exporter import config
from openstack_service_exporter.cli import database_driver, main
from openstack_service_exporter.reader import Reader
from openstack_service_exporter.sources import SOURCES


def listed(
    conf: pathlib.Path, now: datetime.datetime, options: tuple[str, ...] = (), list_options: tuple[str, ...] = ()
) -> tuple[datetime.datetime, list[dict]]:
    """`openstack-service-exporter --config-file CONF [OPTIONS] list --format json [LIST_OPTIONS]`, in
    process so that the frozen clock (freezegun, which also freezes time.time_ns) reaches it.

    Returns the instant the exporter really saw with the records: freezegun derives time_ns from a
    float of seconds, which can land 1 µs before `now`; the caller asks Nova at that same instant.
    """
    out, err = io.StringIO(), io.StringIO()
    with freezegun.freeze_time(now), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        seen = EPOCH + datetime.timedelta(microseconds=time.time_ns() // 1000)
        code = main(["--config-file", str(conf), *options, "list", "--format", "json", *list_options])
    assert code == 0, f"list exited with {code}: {err.getvalue()}"
    return seen, json.loads(out.getvalue())


def from_listing(records: list[dict]) -> list[Verdict]:
    return [
        Verdict(
            r["cell"],
            r["binary"],
            r["host"],
            r["state"],
            r["status"],
            r["forced_down"],
            zones(r["zone"]),
            r["disabled_reason"],
            naive_iso(r["updated_at"]),
        )
        for r in records
    ]


def settings(conf: pathlib.Path, options: tuple[str, ...] = ()) -> config.Settings:
    return config.load(["--config-file", str(conf), *options], SOURCES)


def scraped(conf: pathlib.Path, now: datetime.datetime, options: tuple[str, ...] = ()) -> str:
    """The exposition /metrics would serve at `now`: a reading with that clock, rendered by the
    exporter's collector on its own registry."""
    cfg = settings(conf, options)
    now_us = to_us(now)
    reader = Reader(cfg, clock=lambda: now_us)
    try:
        snapshot = reader.read()
    finally:
        reader.close()
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: snapshot, cfg, lambda: now_us, database_driver(cfg)))
    return generate_latest(registry).decode()


def from_exposition(text: str, prefix: str = "") -> list[Verdict]:
    """Per-service verdicts read back from the exposition with prometheus_client's parser."""
    samples: dict[str, dict[tuple, dict]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            key = (labels.get("cell"), labels.get("binary") or None, labels.get("host") or None)
            samples.setdefault(sample.name.removeprefix(prefix), {})[key] = (labels, sample.value)
    out = []
    for key, (labels, up) in samples.get("service_up", {}).items():
        info_labels, _ = samples["service_info"][key]
        out.append(
            Verdict(
                *key,
                state="up" if up == 1 else "down",
                status="disabled" if samples["service_disabled"][key][1] == 1 else "enabled",
                forced_down=samples["service_forced_down"][key][1] == 1,
                zone=zones(labels["zone"]),
                disabled_reason=info_labels["disabled_reason"],
            )
        )
    return out
