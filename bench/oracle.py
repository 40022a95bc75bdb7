"""The fp64 oracle: the PyTorch reference run again in float64 on the same inputs.

A copy of the module is cast to float64 (parameters and floating buffers), floating inputs
are cast, integer and bool inputs stay as they are, and tensors the model creates itself
default to float64 for the duration of the call. Where float64 cannot run (an operator
without a double kernel, a model that hard-codes float32) the reason is kept and parity falls
back to the fp32 reference alone. Imports torch: parent side, next to the fp32 reference.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ORACLE_NAME = "torch eager fp64"

Arrays = dict[str, np.ndarray]


@dataclass
class Oracle:
    """fp64 outputs for each input batch, or why there are none."""

    status: str  # "ok" | "failed" (float64 could not run) | "unavailable" (no PyTorch source)
    outputs: list[Arrays] = field(default_factory=list)
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_record(self) -> dict[str, Any]:
        return {"status": self.status, "reference": ORACLE_NAME if self.ok else None,
                "reason": self.reason}  # fmt: skip


def double_module(module: Any) -> Any:
    """A float64 copy of `module` (the fp32 module stays as it is)."""
    return copy.deepcopy(module).double().eval()


def fp64_outputs(
    module64: Any, input_names: Sequence[str], output_names: Sequence[str], inputs: list[Arrays]
) -> Oracle:
    """Run the float64 module on every input batch; a failure is an `Oracle` that says why."""
    import torch

    previous = torch.get_default_dtype()
    results: list[Arrays] = []
    try:
        torch.set_default_dtype(torch.float64)
        for batch in inputs:
            args = []
            for name in input_names:
                array = batch[name]
                tensor = torch.from_numpy(np.ascontiguousarray(array))
                args.append(tensor.double() if tensor.is_floating_point() else tensor)
            with torch.inference_mode():
                result = module64(*args)
            result = result if isinstance(result, tuple | list) else (result,)
            results.append({n: t.detach().numpy() for n, t in
                            zip(output_names, result, strict=True)})  # fmt: skip
    except Exception as exc:
        return Oracle("failed", reason=f"float64 run failed: {type(exc).__name__}: {exc}"[:500])
    finally:
        torch.set_default_dtype(previous)
    for outputs in results:
        for name, value in outputs.items():
            if value.dtype.kind == "f" and value.dtype != np.float64:
                return Oracle("failed", reason=f"output {name!r} came back as {value.dtype}, "
                              "not float64: the model computes it in a fixed precision")  # fmt: skip
    return Oracle("ok", results)
