"""Schema v3 -> v4 for a record's `parity` block: the fields parity gained when it began to
explain itself, filled as a v3 run would have had them (allclose decided, nothing else ran)."""

from __future__ import annotations

from typing import Any

V4_FIELDS = ("noise_floor", "oracle", "batch_consistency", "attribution", "divergence")
V4_OUTPUT_FIELDS = ("err_vs_fp32", "err_vs_fp64", "noise_floor", "floor_ratio")


def upgrade_parity(parity: Any) -> Any:
    """A v3 `parity` dict with the v4 fields added (None where v3 measured nothing)."""
    if not isinstance(parity, dict):
        return parity
    parity = dict(parity)
    for name in V4_FIELDS:
        parity.setdefault(name, None)
    parity["outputs"] = [
        {**{name: None for name in V4_OUTPUT_FIELDS}, **entry} if isinstance(entry, dict) else entry
        for entry in parity.get("outputs") or []
    ]
    parity.setdefault("verdicts", {
        "allclose": {"passed": parity.get("passed"), "rtol": parity.get("rtol"),
                     "atol": parity.get("atol")},
        "noise_floor": {"passed": None, "k": None, "worst_ratio": None,
                        "reason": "recorded before bench measured noise floors (schema 3)"},
        "deciding": "allclose",
        "why": "schema 3: allclose was the only verdict",
    })  # fmt: skip
    return parity
