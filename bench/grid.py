"""Expand a `RunConfig` into cells: models x backends x opsets x batch sizes x precisions."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from bench.config import RunConfig


@dataclass(frozen=True)
class Cell:
    """One point of the matrix. Backends that consume the module have no exporter or opset."""

    model: str
    backend: str
    batch_size: int
    precision: str
    exporter: str | None = None
    opset: int | None = None
    dims: tuple[tuple[str, int], ...] = ()  # named dynamic dimensions besides batch
    name: str = ""  # the model's display name (a file model's stem); `model` when empty
    twin: str | None = None  # `bench noise`: the label of one of two identical twins
    target: str | None = None  # --target KEY=VALUE: the Ray nodes that measure it

    @property
    def model_name(self) -> str:
        return self.name or self.model

    @property
    def cell_id(self) -> str:
        export = f"{self.exporter}-op{self.opset}" if self.opset is not None else "eager"
        if self.exporter == "file":
            export = "file"
        extra = "".join(f"/{name}{size}" for name, size in self.dims)
        twin = f"/twin-{self.twin}" if self.twin else ""
        target = f"/on-{self.target}" if self.target else ""
        return (f"{self.model_name}/{self.backend}/{export}/b{self.batch_size}{extra}/"
                f"{self.precision}{twin}{target}")  # fmt: skip

    @property
    def sizes(self) -> dict[str, int]:
        """Every dynamic dimension's size for this cell, batch included."""
        return {"batch": self.batch_size, **dict(self.dims)}


def dim_grid(
    model_dims: Mapping[str, int], swept: Mapping[str, tuple[int, ...]]
) -> list[tuple[tuple[str, int], ...]]:
    """Every combination of a model's non-batch dynamic dimensions.

    A dimension swept by `--dims` takes those sizes; otherwise the model's default size.
    """
    names = sorted(model_dims)
    choices = [swept.get(name, (model_dims[name],)) for name in names]
    return [tuple(zip(names, combo, strict=True)) for combo in itertools.product(*choices)]


def expand_grid(
    config: RunConfig,
    consumes: dict[str, str],
    model_dims: Mapping[str, Mapping[str, int]] | None = None,
    file_models: frozenset[str] = frozenset(),
    names: Mapping[str, str] | None = None,
) -> list[Cell]:
    """All cells in run order: model, backend, opset, batch size, other dims, precision.

    `consumes` maps each backend name to "onnx" or "torch" (torch backends get no opset
    axis); `model_dims` maps a model to its non-batch dynamic dimensions and default sizes;
    `file_models` are given as ONNX files: one "file" export, no opset axis, and no cells of
    backends that consume the PyTorch module (there is none); `names` maps a model reference
    to its display name.
    """
    cells: list[Cell] = []
    swept = dict(config.dims)
    for model in config.models:
        dim_sets = dim_grid((model_dims or {}).get(model, {}), swept)
        for backend in config.backends:
            exports: list[tuple[str | None, int | None]] = [(None, None)]
            if consumes[backend] == "torch" and model in file_models:
                continue
            if consumes[backend] == "onnx" and model in file_models:
                exports = [("file", None)]
            elif consumes[backend] == "onnx":
                exports = [(config.exporter, opset) for opset in config.opsets]
            for exporter, opset in exports:
                for batch in config.batch_sizes:
                    for dims in dim_sets:
                        for precision in config.precisions:
                            cells.append(
                                Cell(
                                    model,
                                    backend,
                                    batch,
                                    precision,
                                    exporter,
                                    opset,
                                    dims,
                                    (names or {}).get(model, ""),
                                )
                            )
    return cells
