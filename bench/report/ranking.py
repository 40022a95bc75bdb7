"""Rankings that admit ties: a backend is called fastest only when the run can tell.

For each (model, batch size, dims, precision, mode), each backend competes with its best
cell among those that ran `ok` with parity passed. The leader (lowest center per item) is
named fastest only when the upper end of its 95% interval lies below the lower end of the
runner-up's (the next lowest center); otherwise the leader, the runner-up and any backend
whose center falls inside either of their intervals are tied, with how far apart they could
be. A slower backend with a wild interval (a contended run) neither blocks a clear verdict
nor joins a tie it is far from. Cells of one backend whose ONNX graphs are identical (same
`export.graph_sha256`, another opset number) are one contender, never ranked apart: their
intervals are joined. Pure functions over records.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

from bench.report import fields
from bench.report.format import dims_text, export_label


@dataclass(frozen=True)
class Contender:
    """One backend's best entry: one cell, or cells of one graph written at several opsets."""

    backend: str
    exports: tuple[str, ...]  # export labels of the cells it stands for
    center_us: float  # the cell's center (several cells: the median of their centers)
    low_us: float | None  # its 95% interval (several cells: from the lowest to the highest)
    high_us: float | None
    items: int  # items one timed unit processes: ranking is per item
    speedup_vs_torch: float | None
    contended: bool  # it, or its torch baseline, ran while other processes held the CPU
    loop_interval: bool  # the interval covers one loop's jitter only (a single trial)

    @property
    def export(self) -> str:
        """`dynamo op17`, or `dynamo op13 = op17, same graph`."""
        if len(self.exports) == 1:
            return self.exports[0]
        rest = [e.split(" ", 1)[1] if " " in e else e for e in self.exports[1:]]
        return f"{self.exports[0]} = {' = '.join(rest)}, same graph"

    @overload
    def per_item(self, value: float) -> float: ...
    @overload
    def per_item(self, value: float | None) -> float | None: ...
    def per_item(self, value: float | None) -> float | None:
        return None if value is None else value / self.items


@dataclass(frozen=True)
class Ranking:
    """The verdict for one (model, batch size, dims, precision, mode)."""

    model: str
    batch_size: int
    dims: str
    precision: str
    mode: str
    contenders: tuple[Contender, ...]  # leader (lowest center per item) first
    fastest: Contender | None  # named only when its interval is clear of the runner-up's
    tied: tuple[Contender, ...]  # otherwise: leader, runner-up, any centered in their intervals
    could_differ: float | None  # tied: the largest ratio high / low between them, minus 1
    faster_but_wrong: tuple[str, ...]  # backends whose failed-parity cells were faster


def _passed(record: Mapping[str, Any]) -> bool:
    return record["status"] == "ok" and (record.get("parity") or {}).get("passed") is not False


def _known_center(block: Mapping[str, Any] | None) -> float:
    """A ranked cell's center: `rank` keeps only cells that have one."""
    center = fields.center_us(block)
    if center is None:
        raise ValueError("a ranked cell has no center")
    return center


def _known_per_item(record: Mapping[str, Any]) -> float:
    """A ranked cell's center per item: `rank` keeps only cells that have one."""
    timing = fields.per_item_us(record)
    if timing is None:
        raise ValueError("a ranked cell has no center")
    return timing[0]


def _contender(cells: Sequence[Mapping[str, Any]], base: Mapping[tuple, Any]) -> Contender:
    blocks = [fields.timed_block(r) for r in cells]
    centers = [_known_center(b) for b in blocks]
    intervals = [fields.interval_us(b) for b in blocks]
    known = [i for i in intervals if i is not None]
    speeds = [fields.speedup(r, base) for r in cells]
    values = [s for s, _ in speeds if s is not None]
    return Contender(
        backend=fields.backend_label(cells[0]),
        exports=tuple(sorted({export_label(r) for r in cells})),
        center_us=statistics.median(centers),
        low_us=min(i[0] for i in known) if len(known) == len(cells) else None,
        high_us=max(i[1] for i in known) if len(known) == len(cells) else None,
        items=fields.items_per_unit(cells[0]),
        speedup_vs_torch=statistics.median(values) if values else None,
        contended=any(fields.contended(r) or c for r, (_, c) in zip(cells, speeds, strict=True)),
        loop_interval=any(fields.interval_scope(b) == "loop" for b in blocks),
    )


def _best_per_backend(
    cells: Sequence[Mapping[str, Any]], base: Mapping[tuple, Any]
) -> list[Contender]:
    """Each backend's best contender; cells of one graph (any opset) count as one."""
    by_graph: dict[tuple, list[Mapping[str, Any]]] = {}
    for record in cells:
        graph = fields.graph_sha(record) or f"cell {id(record)}"
        by_graph.setdefault((fields.backend_label(record), graph), []).append(record)
    best: dict[str, Contender] = {}
    for (backend, _), group in by_graph.items():
        entry = _contender(group, base)
        if backend not in best or entry.per_item(entry.center_us) < best[backend].per_item(
            best[backend].center_us
        ):
            best[backend] = entry
    return sorted(best.values(), key=lambda c: c.per_item(c.center_us))


def _overlaps(a: Contender, b: Contender) -> bool:
    """True unless both intervals are known and disjoint."""
    if a.low_us is None or a.high_us is None or b.low_us is None or b.high_us is None:
        return True
    return not (a.per_item(a.high_us) < b.per_item(b.low_us)
                or b.per_item(b.high_us) < a.per_item(a.low_us))  # fmt: skip


def _inside(c: Contender, other: Contender) -> bool:
    """Whether `c`'s center lies inside `other`'s interval (or `other` has none)."""
    if other.low_us is None or other.high_us is None:
        return True
    center = c.per_item(c.center_us)
    return other.per_item(other.low_us) <= center <= other.per_item(other.high_us)


def could_differ(tied: Sequence[Contender]) -> float | None:
    """max over pairs of (one's upper end / the other's lower end) − 1: how much faster one
    of the tied backends could truly be than another. None when an interval is missing."""
    bounds: list[tuple[Contender, float, float]] = []  # (contender, low, high) per item
    for c in tied:
        if c.low_us is None or c.high_us is None or c.low_us <= 0:
            return None
        bounds.append((c, c.per_item(c.low_us), c.per_item(c.high_us)))
    return max(high / low
               for a, _, high in bounds for b, low, _ in bounds if a is not b) - 1  # fmt: skip


def rank(records: Sequence[Mapping[str, Any]]) -> list[Ranking]:
    """One Ranking per (model, batch size, dims, precision, mode) that has a timed cell."""
    cells = [r for r in fields.cell_records(records) if fields.per_item_us(r) is not None]
    base = fields.baselines(records)
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for record in cells:
        key = (record["model"], record["batch_size"], dims_text(record.get("dims")),
               record["precision"], record.get("mode", "latency"))  # fmt: skip
        groups.setdefault(key, []).append(record)
    rankings = []
    for (model, batch, dims, precision, mode), group in groups.items():
        contenders = _best_per_backend([r for r in group if _passed(r)], base)
        fastest: Contender | None
        tied: tuple[Contender, ...]
        spread: float | None
        bar: float
        if not contenders:
            fastest, tied, spread, bar = None, (), None, float("inf")
        else:
            leader = contenders[0]
            tied = (leader,)
            if len(contenders) > 1 and _overlaps(leader, runner := contenders[1]):
                near = [c for c in contenders[2:] if _inside(c, leader) or _inside(c, runner)]
                tied = (leader, runner, *near)
            fastest = leader if len(tied) == 1 else None
            spread = None if fastest else could_differ(tied)
            tied = () if fastest else tied
            bar = leader.per_item(leader.center_us)
        wrong = sorted({fields.backend_label(r) for r in group if not _passed(r)
                        and r["status"] in ("ok", "parity_failed")
                        and _known_per_item(r) < bar})  # fmt: skip
        rankings.append(Ranking(model, int(batch), dims, precision, mode, tuple(contenders),
                                fastest, tied, spread, tuple(wrong)))  # fmt: skip
    return sorted(rankings, key=lambda r: (r.model, r.dims, r.precision, r.mode, r.batch_size))
