"""What a model must be for bench, checked when it is loaded: each problem one line that says
what to change. Free of torch: tensors are recognised by their methods.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from bench.models.spec import GENERATORS, PRECISIONS, InputSpec, ModelSpec

#: Largest size of any one axis (as `--batch-sizes` and `--dims` allow).
MAX_SIZE = 65536
#: Generators and the numpy dtype kinds they can fill (b bool, i/u integers, f floats).
_KINDS = {
    "normal": "f",
    "uniform": "f",
    "int": "iu",
    "ones": "biuf",
    "mask": "biuf",
    "bool": "biuf",
}
_KIND_NAMES = {"f": "a float dtype (float32, float16, float64)", "iu": "an integer dtype "
               "(int64, int32, uint8, ...)", "biuf": "a numeric or bool dtype"}  # fmt: skip


class ModelProblem(ValueError):
    """A model that bench cannot measure as given; the message says what to change."""


def _whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _size(where: str, value: Any) -> None:
    if not _whole(value):
        raise ModelProblem(f"{where} is {value!r}: sizes are whole numbers from 1 to {MAX_SIZE}")
    if not 1 <= int(value) <= MAX_SIZE:
        raise ModelProblem(f"{where} is {value}: sizes are 1 to {MAX_SIZE}")


def check_input(spec: InputSpec) -> None:
    """One input: name, shape, dtype, generator, and the value range it draws from."""
    if not isinstance(spec.name, str) or not spec.name:
        raise ModelProblem(f"an input's name is {spec.name!r}: give a non-empty string")
    where = f"input {spec.name!r}"
    if not isinstance(spec.shape, tuple | list):
        raise ModelProblem(f"{where}: shape {spec.shape!r} must be a tuple of sizes and names")
    for axis, dim in enumerate(spec.shape):
        if isinstance(dim, str):
            if not dim:
                raise ModelProblem(f"{where}: axis {axis} has an empty name")
        else:
            _size(f"{where}: axis {axis}", dim)
    try:
        dtype = np.dtype(spec.dtype)
    except TypeError:
        raise ModelProblem(
            f"{where}: dtype {spec.dtype!r} is not a numpy dtype; use e.g. float32, float16, "
            "int64, int32 or bool"
        ) from None
    if spec.generator not in GENERATORS:
        raise ModelProblem(
            f"{where}: unknown generator {spec.generator!r}; valid: {', '.join(GENERATORS)}"
        )
    kinds = _KINDS[spec.generator]
    if dtype.kind not in kinds:
        fix = " (dtype defaults to float32: give dtype='int64')" if spec.generator == "int" else ""
        raise ModelProblem(
            f"{where}: generator {spec.generator!r} needs {_KIND_NAMES[kinds]}, "
            f"got dtype {dtype.name}{fix}"
        )
    if spec.generator == "mask" and not spec.shape:
        raise ModelProblem(f"{where}: generator 'mask' needs at least one axis")
    _check_range(where, spec, dtype)


def _check_range(where: str, spec: InputSpec, dtype: np.dtype) -> None:
    given = [v for v in (spec.low, spec.high) if v is not None]
    if spec.generator not in ("int", "uniform"):
        if given:
            raise ModelProblem(f"{where}: generator {spec.generator!r} takes no low/high "
                               "(only 'int' and 'uniform' draw from a range)")  # fmt: skip
        return
    for value in given:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ModelProblem(f"{where}: low/high must be numbers, got {value!r}")
        if not math.isfinite(value):
            raise ModelProblem(f"{where}: low/high must be finite, got {value}")
    low, high = spec.value_range()
    if spec.generator == "uniform":
        if not low < high:
            raise ModelProblem(f"{where}: uniform needs low < high, got {low} and {high}")
        return
    if spec.high is None:
        raise ModelProblem(f"{where}: generator 'int' needs high= (values are drawn from low, "
                           "default 0, up to high, exclusive: the size of the table they index)")  # fmt: skip
    if not all(float(v).is_integer() for v in (low, high)):
        raise ModelProblem(f"{where}: generator 'int' needs whole low and high, got {low}, {high}")
    info = np.iinfo(dtype)
    if not (info.min <= low < high <= info.max + 1):
        raise ModelProblem(
            f"{where}: int range [{int(low)}, {int(high)}) must hold at least one value and fit "
            f"{dtype.name} ({info.min} to {info.max})"
        )


def check_spec(spec: ModelSpec) -> None:
    """Every part of a spec; raises `ModelProblem` for the first problem found."""
    if not isinstance(spec.name, str) or not spec.name:
        raise ModelProblem(f"the spec's name is {spec.name!r}: give a non-empty string")
    for item in spec.inputs:
        if not isinstance(item, InputSpec):
            raise ModelProblem(f"inputs must be bench.models.InputSpec, got {type(item).__name__}")
        check_input(item)
    for kind, names in (("input", spec.input_names), ("output", spec.output_names)):
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ModelProblem(f"{kind} names must be unique; repeated: {', '.join(repeated)}")
    if not spec.outputs:
        raise ModelProblem("the spec names no outputs: give one OutputSpec per output tensor")
    for table, label in ((spec.default_dims, "default_dims"), (spec.export_dims, "export_dims")):
        for name, size in dict(table).items():
            _size(f"{label}[{name!r}]", size)
    named = {d: i.name for i in spec.inputs for d in i.shape if isinstance(d, str)}
    missing = sorted(set(named) - {"batch"} - set(spec.default_dims))
    if missing:
        name = missing[0]
        raise ModelProblem(f"dimension {name!r} (input {named[name]!r}) has no default size: "
                           f"add default_dims={{{name!r}: SIZE}} to the ModelSpec")  # fmt: skip
    for precision, tolerance in dict(spec.tolerances).items():
        values = (getattr(tolerance, "rtol", None), getattr(tolerance, "atol", None))
        if precision not in PRECISIONS or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            for v in values
        ):
            raise ModelProblem(f"tolerances[{precision!r}] must be a Tolerance with finite rtol "
                               f"and atol >= 0, for one of {', '.join(PRECISIONS)}")  # fmt: skip


def _is_tensor(value: Any) -> bool:
    return all(hasattr(value, name) for name in ("detach", "dtype", "shape"))


def flatten_outputs(result: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """A forward's result as (name, tensor) pairs, depth first, as the ONNX exporters flatten
    it: a tensor is `output_0`; a tuple or list `output_0, output_1, ...`; a dict by its keys;
    nested parts joined with dots (`output_1.0`, `logits`, `past.0`). Raises `ModelProblem`
    for None, an empty result or a part that is not a tensor."""
    if _is_tensor(result):
        return [(prefix or "output_0", result)]
    if isinstance(result, Mapping):
        items = [(str(key), value) for key, value in result.items()]
    elif isinstance(result, tuple | list):
        items = [(str(i) if prefix else f"output_{i}", v) for i, v in enumerate(result)]
    else:
        what = "None" if result is None else f"a {type(result).__name__}"
        where = f"forward()'s output {prefix!r} is" if prefix else "forward() returned"
        raise ModelProblem(f"{where} {what}: return a tensor, a tuple or list of tensors, "
                           "or a dict of them")  # fmt: skip
    flat = [pair for key, value in items
            for pair in flatten_outputs(value, f"{prefix}.{key}" if prefix else key)]  # fmt: skip
    if not flat:
        where = f"forward()'s output {prefix!r} is" if prefix else "forward() returned"
        raise ModelProblem(f"{where} an empty {type(result).__name__}: return at least one "
                           "tensor")  # fmt: skip
    return flat


def named_outputs(result: Any, names: list[str]) -> list[tuple[str, Any]]:
    """The flattened outputs under the spec's output names; `ModelProblem` when the counts
    differ (the message lists what forward returned)."""
    flat = flatten_outputs(result)
    if len(flat) != len(names):
        found = ", ".join(name for name, _ in flat)
        raise ModelProblem(
            f"forward() returned {len(flat)} tensors ({found}) but the spec names "
            f"{len(names)} outputs ({', '.join(names)}): give one OutputSpec per tensor, in "
            "this order"
        )
    return list(zip(names, [tensor for _, tensor in flat], strict=True))
