"""What a model is to bench: a seeded module builder plus the description of its inputs.

This module stays free of torch so worker processes and `bench list` can read specs cheaply;
only `ModelSpec.build_module` imports torch.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

GENERATORS = ("normal", "uniform", "int", "ones", "mask", "bool")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Tolerance:
    """allclose-style tolerance: |actual - expected| <= atol + rtol * |expected|."""

    rtol: float
    atol: float


DEFAULT_TOLERANCES: Mapping[str, Tolerance] = {
    "fp32": Tolerance(rtol=1e-3, atol=1e-5),
    "bf16": Tolerance(rtol=5e-2, atol=5e-2),
}


@dataclass(frozen=True)
class InputSpec:
    """One named model input. `shape` entries are sizes or names of dynamic dimensions.

    `low` and `high` bound the values of the `int` generator (whole numbers from `low`,
    default 0, up to `high`, exclusive: give `high`, e.g. the vocabulary size) and of
    `uniform` (default 0 to 1); other generators take neither.
    """

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"
    generator: str = "normal"
    low: float | None = None
    high: float | None = None

    def value_range(self) -> tuple[float, float]:
        """(low, high) with the defaults filled in: 0, and 1 for `uniform`."""
        low = 0.0 if self.low is None else self.low
        if self.high is not None:
            return low, self.high
        return low, 1.0 if self.generator == "uniform" else 0.0

    def dynamic_dims(self) -> dict[int, str]:
        """Axis index -> dimension name, for every named (dynamic) axis."""
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}

    def concrete_shape(self, dims: Mapping[str, int]) -> tuple[int, ...]:
        """The shape with every named dimension replaced by its size in `dims`."""
        return tuple(dims[d] if isinstance(d, str) else d for d in self.shape)

    def generate(self, dims: Mapping[str, int], rng: np.random.Generator) -> np.ndarray:
        """Draw a value for this input from its generator."""
        shape = self.concrete_shape(dims)
        value: np.ndarray
        low, high = self.value_range()
        if self.generator == "normal":
            value = rng.standard_normal(shape)
        elif self.generator == "uniform":
            value = rng.uniform(low, high, shape)
        elif self.generator == "int":
            value = rng.integers(int(low), int(high), shape, dtype=np.dtype(self.dtype))
        elif self.generator == "ones":
            value = np.ones(shape)
        elif self.generator == "mask":
            # Attention mask: ones, then padding (zeros) at the end of each row; at least one
            # position of every row stays visible.
            value = np.ones(shape)
            lengths = rng.integers(1, shape[-1] + 1, shape[:-1])
            value[np.arange(shape[-1]) >= lengths[..., None]] = 0
        elif self.generator == "bool":
            value = rng.random(shape) < 0.5
        else:
            raise ValueError(
                f"unknown generator {self.generator!r}; valid: {', '.join(GENERATORS)}"
            )
        return value.astype(self.dtype)


@dataclass(frozen=True)
class OutputSpec:
    """One named model output; `logits` outputs also get an argmax-agreement check."""

    name: str
    logits: bool = False
    #: Sizes or dimension names, as for inputs; exporters keep the named axes dynamic.
    shape: tuple[int | str, ...] | None = None

    def dynamic_dims(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.shape or ()) if isinstance(d, str)}


@dataclass(frozen=True)
class ModelSpec:
    """A model bench can export and benchmark. `build` returns an `nn.Module`."""

    name: str
    build: Callable[[], Any]
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    tolerances: Mapping[str, Tolerance] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    export_dims: Mapping[str, int] = field(default_factory=lambda: {"batch": 2})
    #: Size of each non-batch dynamic dimension when the run does not sweep it (`--dims`).
    default_dims: Mapping[str, int] = field(default_factory=dict)
    seed: int = 0
    description: str = ""
    #: Set for a model given as an ONNX file: no PyTorch module, no export, no opset axis.
    onnx_path: str | None = None

    def dynamic_dims(self) -> dict[str, int]:
        """Named dynamic dimensions besides batch, with their default sizes."""
        names = {d for i in self.inputs for d in i.shape if isinstance(d, str) and d != "batch"}
        missing = names - set(self.default_dims)
        if missing:
            raise ValueError(f"{self.name}: no default size for dimensions {sorted(missing)}")
        return {name: int(self.default_dims[name]) for name in sorted(names)}

    def fixed_batch(self) -> int | None:
        """None when an input has a `batch` axis. Otherwise the items one inference holds
        whatever `--batch-sizes` says: for an ONNX file the fixed leading size its inputs
        share (an input `[1, 64]`: 1), else 1 (no inputs, or no batch axis)."""
        if any("batch" in i.shape for i in self.inputs):
            return None
        leading = {i.shape[0] if i.shape else None for i in self.inputs}
        if self.onnx_path and len(leading) == 1 and isinstance(next(iter(leading)), int):
            return int(next(iter(leading)))  # type: ignore[arg-type]
        return 1

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def export_sizes(self) -> dict[str, int]:
        """Sizes of the example input used for export: `export_dims`, else the defaults, with
        dimensions of size 1 raised to 2 so that no exporter specialises them."""
        sizes = {"batch": 2, **{k: max(v, 2) for k, v in self.dynamic_dims().items()}}
        return {**sizes, **self.export_dims}

    def tolerance(self, precision: str) -> Tolerance:
        """The parity tolerance for `precision` (the model's own, else the default)."""
        return self.tolerances.get(precision, DEFAULT_TOLERANCES[precision])

    def make_inputs(self, dims: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
        """Seeded input values for concrete dimension sizes, e.g. {"batch": 8}."""
        rng = np.random.default_rng(seed)
        return {i.name: i.generate(dims, rng) for i in self.inputs}

    def build_module(self) -> Any:
        """The `nn.Module` in eval mode, with weights drawn from the spec's seed."""
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            module = self.build()
        return module.eval()

    def source_hash(self) -> str:
        """A hash of the code that defines the model, for the export cache key."""
        digest = hashlib.sha256(repr((self.name, self.inputs, self.outputs)).encode())
        try:
            source_file = inspect.getsourcefile(getattr(self.build, "__wrapped__", self.build))
            if source_file:
                with open(source_file, "rb") as fh:
                    digest.update(fh.read())
        except (TypeError, OSError):
            digest.update(repr(self.build).encode())
        return digest.hexdigest()[:16]
