"""One service's verdict as any side states it, and the side-by-side report of disagreements."""
from __future__ import annotations

from dataclasses import dataclass

Key = tuple  # (cell, binary, host)


@dataclass(frozen=True)
class Verdict:
    cell: str
    binary: str | None
    host: str | None
    state: str                      # up | down
    status: str                     # enabled | disabled
    forced_down: bool
    zone: frozenset[str]            # Nova joins several zones in unstable set order: compared as a set
    disabled_reason: str | None
    updated_at: str | None = None   # naive UTC ISO 8601; not part of /metrics

    @property
    def key(self) -> Key:
        return (self.cell, self.binary, self.host)


ALL_FIELDS = ("state", "status", "forced_down", "zone", "disabled_reason", "updated_at")
# /metrics has no updated_at, and an empty label stands for a NULL disabled_reason.
METRIC_FIELDS = ("state", "status", "forced_down", "zone", "disabled_reason")


def zones(text: str) -> frozenset[str]:
    return frozenset(text.split(","))


def by_key(verdicts: list[Verdict], side: str) -> dict[Key, Verdict]:
    table: dict[Key, Verdict] = {}
    for v in verdicts:
        assert v.key not in table, f"{side} lists {v.key} twice: {table[v.key]} and {v}"
        table[v.key] = v
    return table


def _show(v: Verdict | None, name: str) -> str:
    if v is None:
        return "(not listed)"
    value = getattr(v, name)
    return ",".join(sorted(value)) if isinstance(value, frozenset) else repr(value)


def differences(nova: list[Verdict], exporter: list[Verdict], compared: tuple[str, ...],
                context=lambda key: "") -> list[str]:
    """Every (cell, binary, host) on which the two sides disagree, both rows printed side by side."""
    left, right = by_key(nova, "Nova"), by_key(exporter, "the exporter")
    out = []
    for key in sorted(left.keys() | right.keys(), key=repr):
        a, b = left.get(key), right.get(key)
        if a is not None and b is not None and all(getattr(a, f) == getattr(b, f) for f in compared):
            continue
        lines = [f"  {key}:", f"    {'field':<16} {'Nova 34.0.0':<32} exporter"]
        for name in compared:
            mark = "" if a and b and getattr(a, name) == getattr(b, name) else "   <== differs"
            lines.append(f"    {name:<16} {_show(a, name):<32} {_show(b, name)}{mark}")
        extra = context(key)
        if extra:
            lines.append(f"    row: {extra}")
        out.append("\n".join(lines))
    return out
