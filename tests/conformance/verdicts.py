"""One service's verdict as any side states it, and the side-by-side report of disagreements."""

from __future__ import annotations

import collections
import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    cell: str | None  # None: GET /os-services does not say which cell
    binary: str | None
    host: str | None
    state: str  # up | down
    status: str  # enabled | disabled
    forced_down: bool
    zone: frozenset[str]  # Nova joins several zones in unstable set order: compared as a set
    disabled_reason: str | None
    updated_at: str | None = None  # naive UTC ISO 8601, whole seconds; not part of /metrics

    @property
    def key(self) -> tuple:
        return (self.cell, self.binary, self.host)

    @property
    def host_key(self) -> tuple:
        return (self.binary, self.host)


ALL_FIELDS = ("state", "status", "forced_down", "zone", "disabled_reason", "updated_at")
# /metrics has no updated_at, and an empty label stands for a NULL disabled_reason.
METRIC_FIELDS = ("state", "status", "forced_down", "zone", "disabled_reason")


def zones(text: str) -> frozenset[str]:
    return frozenset(text.split(","))


def naive_iso(text: str | None) -> str | None:
    """'2012-10-29T13:42:02.000000', '...Z' or '...+00:00' -> '2012-10-29T13:42:02'."""
    if text is None:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None).isoformat()


def _show(v: Verdict | None, name: str) -> str:
    if v is None:
        return "(not listed)"
    value = getattr(v, name)
    return ",".join(sorted(value)) if isinstance(value, frozenset) else repr(value)


def _grouped(verdicts: list[Verdict], key, compared) -> dict[tuple, list[Verdict]]:
    groups: dict[tuple, list[Verdict]] = {}
    for v in verdicts:
        groups.setdefault(key(v), []).append(v)
    for rows in groups.values():
        rows.sort(key=lambda v: repr([getattr(v, f) for f in compared]))
    return groups


def differences(
    nova: list[Verdict],
    exporter: list[Verdict],
    compared: tuple[str, ...],
    context: Callable[[tuple], str] = lambda key: "",
    key: Callable[[Verdict], tuple] = lambda v: v.key,
    reference: str = "Nova 34.0.0",
) -> list[str]:
    """Every key on which the two sides disagree, both rows printed side by side. Rows that share a
    key (only when the key leaves out the cell) are compared as a multiset. Any rows with the
    compared fields will do (dataclasses of another project too); `reference` names the first side."""
    left, right = _grouped(nova, key, compared), _grouped(exporter, key, compared)
    out = []
    for k in sorted(left.keys() | right.keys(), key=repr):
        a, b = left.get(k, []), right.get(k, [])
        if [[getattr(v, f) for f in compared] for v in a] == [[getattr(v, f) for f in compared] for v in b]:
            continue
        lines = [f"  {k}:", f"    {'field':<16} {reference:<32} exporter"]
        for i in range(max(len(a), len(b))):
            x, y = (a[i] if i < len(a) else None), (b[i] if i < len(b) else None)
            for name in compared:
                same = x is not None and y is not None and getattr(x, name) == getattr(y, name)
                lines.append(f"    {name:<16} {_show(x, name):<32} {_show(y, name)}{'' if same else '   <== differs'}")
        extra = context(k)
        if extra:
            lines.append(f"    row: {extra}")
        out.append("\n".join(lines))
    return out


def compare_clouds(clouds: Iterable, compare: Callable) -> tuple[collections.Counter, list[str]]:
    """compare(cloud) -> (counts, problems) over many clouds: the summed counts, and one report per
    disagreeing cloud headed by what rebuilds it."""
    counts, failures = collections.Counter(), []
    for cloud in clouds:
        found, problems = compare(cloud)
        counts.update(found)
        if problems:
            failures.append(f"cloud {cloud.describe()}\n" + "\n".join(problems))
    return counts, failures
