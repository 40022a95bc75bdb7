"""Expand a `RunConfig` into cells: models x backends x opsets x batch sizes x precisions."""

from __future__ import annotations

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

    @property
    def cell_id(self) -> str:
        export = f"{self.exporter}-op{self.opset}" if self.opset is not None else "eager"
        return f"{self.model}/{self.backend}/{export}/b{self.batch_size}/{self.precision}"


def expand_grid(config: RunConfig, consumes: dict[str, str]) -> list[Cell]:
    """All cells in run order: model, backend, opset, batch size, precision.

    `consumes` maps each backend name to "onnx" or "torch" (torch backends get no opset axis).
    """
    cells: list[Cell] = []
    for model in config.models:
        for backend in config.backends:
            exports: list[tuple[str | None, int | None]] = (
                [(config.exporter, opset) for opset in config.opsets]
                if consumes[backend] == "onnx"
                else [(None, None)]
            )
            for exporter, opset in exports:
                for batch in config.batch_sizes:
                    for precision in config.precisions:
                        cells.append(Cell(model, backend, batch, precision, exporter, opset))
    return cells
