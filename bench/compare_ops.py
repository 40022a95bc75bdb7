"""`bench compare` per op type: between two runs' profiled cells (`--profile`), which op
types got slower or faster and by how much, so "ort-cpu 1.3x slower" comes with "Conv 1.8x,
everything else unchanged". Pure functions over records.

A profile is one averaged pass, not trials: there is no interval to test. An op type counts
as changed when its time per inference moved by more than `CHANGE` (either way) and it holds
at least `MIN_SHARE` of either side's node time; op types on one side only (fusion turned on
or off, a layout conversion added) are `new` or `gone`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.comparison import Run, _key

#: A ratio beyond 1.25 (or below 1/1.25) counts as a change in one profiled pass.
CHANGE = 1.25
#: Op types under this share of both sides' node time are never called changed.
MIN_SHARE = 0.02


@dataclass(frozen=True)
class OpChange:
    """One op type of one joined cell, baseline against another run."""

    key: tuple
    other: str
    op_type: str
    family: str
    base_us: float | None  # per inference; None: absent from the baseline's profile
    other_us: float | None
    base_share: float
    other_share: float
    verdict: str  # "slower" | "faster" | "unchanged" | "new" | "gone"

    @property
    def ratio(self) -> float | None:
        if self.base_us and self.other_us is not None:
            return self.other_us / self.base_us
        return None


@dataclass(frozen=True)
class CellOps:
    """A joined cell whose both sides were profiled: its op types and the one-line story."""

    key: tuple
    other: str
    base_node_us: float
    other_node_us: float
    changes: list[OpChange]

    def summary(self) -> str:
        """`Conv 1.8x, Relu new; everything else unchanged` (or `no op type changed`)."""
        moved = [c for c in self.changes if c.verdict != "unchanged"]
        if not moved:
            return "no op type changed"
        parts = [f"{c.op_type} {c.ratio:.2f}x" if c.ratio else f"{c.op_type} {c.verdict}"
                 for c in moved]  # fmt: skip
        rest = len(self.changes) - len(moved)
        return ", ".join(parts) + ("; everything else unchanged" if rest else "")


def _op_types(record: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    profile = record.get("profile")
    if not isinstance(profile, dict) or not profile.get("op_types"):
        return None
    return {str(o["op_type"]): o for o in profile["op_types"]}


def _verdict(base: dict[str, Any] | None, other: dict[str, Any] | None) -> str:
    if base is None:
        return "new"
    if other is None:
        return "gone"
    b, o = float(base.get("time_us") or 0), float(other.get("time_us") or 0)
    big = max(float(base.get("share") or 0), float(other.get("share") or 0)) >= MIN_SHARE
    if not big or b <= 0:
        return "unchanged"
    if o / b > CHANGE:
        return "slower"
    return "faster" if o / b < 1 / CHANGE else "unchanged"


def cell_ops(base: dict[str, Any], other: dict[str, Any], other_name: str) -> CellOps | None:
    """The op-type changes of one joined cell (None unless both sides were profiled)."""
    before, after = _op_types(base), _op_types(other)
    if before is None or after is None:
        return None
    changes = []
    for op_type in sorted(set(before) | set(after)):
        b, o = before.get(op_type), after.get(op_type)
        either = b or o or {}
        changes.append(OpChange(
            _key(base), other_name, op_type, str(either.get("family") or "other"),
            float(b["time_us"]) if b else None, float(o["time_us"]) if o else None,
            float((b or {}).get("share") or 0), float((o or {}).get("share") or 0),
            _verdict(b, o),
        ))  # fmt: skip
    order = {"slower": 0, "faster": 1, "new": 2, "gone": 3, "unchanged": 4}
    changes.sort(key=lambda c: (order[c.verdict], -max(c.base_us or 0, c.other_us or 0)))
    return CellOps(_key(base), other_name, sum(c.base_us or 0 for c in changes),
                   sum(c.other_us or 0 for c in changes), changes)  # fmt: skip


def op_type_changes(runs: Sequence[Run], baseline: int = 0) -> list[CellOps]:
    """Every cell profiled in the baseline and in another run, with its op-type changes."""
    base = {_key(r): r for r in runs[baseline].records if r.get("kind", "cell") == "cell"}
    found = []
    for index, run in enumerate(runs):
        if index == baseline:
            continue
        for record in run.records:
            if record.get("kind", "cell") != "cell" or _key(record) not in base:
                continue
            ops = cell_ops(base[_key(record)], record, run.name)
            if ops is not None:
                found.append(ops)
    return found
