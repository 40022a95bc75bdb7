"""The contract every runtime backend implements (see docs/design.md, "Interfaces").

Backends never read the clock: `bench.timing` times `run()`. `run()` must return only once
the inference is complete (device backends synchronise inside it), so that the timing is true.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from bench.errors import BackendUnavailable, PrecisionMismatch

__all__ = [
    "Backend",
    "BackendUnavailable",
    "LoadSpec",
    "NodeTime",
    "PrecisionMismatch",
    "RawProfile",
    "graph_node_names",
]


@dataclass(frozen=True)
class LoadSpec:
    """What a backend needs to prepare one cell.

    `source` is an ONNX file path when the backend consumes "onnx", and a model reference
    (registry name or `module:function`) when it consumes "torch".
    """

    source: str
    precision: str = "fp32"
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    threads: int | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    mode: str = "latency"  # "latency" | "throughput": backends tune for it (OpenVINO's hint)
    output_names: tuple[str, ...] = ()  # the model's outputs, in order, as the caller names them


@dataclass
class NodeTime:
    """One node (or operator) as the runtime's own profiler saw it, over every profiled run.

    `kernel` is the implementation the runtime picked (OpenVINO's exec type such as
    `brgconv_avx2_f32` or `ref_any`, the ONNX Runtime provider's kernel, a torch operator);
    `precision` the element type it computed in (`fp32`, `bf16`, `int64`, ... or "");
    `device` the device or execution provider it ran on; `inserted` whether the runtime added
    the node (absent from the model file: layout reorders, copies), None when unknown.
    """

    name: str
    op_type: str
    total_us: float  # summed over every profiled run
    runs: int  # how many of the profiled runs executed it
    kernel: str = ""
    precision: str = ""
    device: str = ""
    inserted: bool | None = None
    #: Its time in each profiled run, µs, where the runtime reports runs one by one.
    samples_us: list[float] = field(default_factory=list)


@dataclass
class RawProfile:
    """What a backend's profiled pass returns: nodes in execution order and a trace in the
    Trace Event Format (a list of events, `ts`/`dur` in microseconds)."""

    tool: str
    runs: int
    nodes: list[NodeTime]
    trace: list[dict] = field(default_factory=list)
    #: Per-run durations the runtime itself reports around a whole inference, µs (may be []).
    run_us: list[float] = field(default_factory=list)


def graph_node_names(path: str) -> set[str]:
    """Node names of an ONNX file's graph (weights not loaded), to tell the nodes a runtime
    inserted from the model's own."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    return {node.name for node in model.graph.node}


class Backend(abc.ABC):
    """One inference runtime on one device."""

    name: ClassVar[str]
    device: ClassVar[str]
    consumes: ClassVar[str]
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    #: In throughput mode one timed round runs `requests * ROUND_DEPTH` inferences.
    ROUND_DEPTH: ClassVar[int] = 4
    #: True: every cell of this backend runs in a fresh worker process, started for that cell
    #: alone. For runtimes whose process-wide state would carry from one cell into the next
    #: and change its numbers: torch.compile's caches must not leak between cells. False (the
    #: default): one worker serves all of a backend's cells in a row and is replaced only when
    #: it dies.
    fresh_worker: ClassVar[bool] = False

    @classmethod
    @abc.abstractmethod
    def check_available(cls) -> None:
        """Raise `BackendUnavailable` with the reason when this backend cannot run here."""

    @abc.abstractmethod
    def load(self, spec: LoadSpec) -> None:
        """Create the session / compile the model. Timed by the caller as load time."""

    @abc.abstractmethod
    def bind(self, inputs: Mapping[str, np.ndarray]) -> None:
        """Place inputs where `run()` reads them, once, outside the timed loop."""

    @abc.abstractmethod
    def run(self) -> None:
        """One inference on the bound inputs; returns when the result is complete."""

    @abc.abstractmethod
    def outputs(self) -> dict[str, np.ndarray]:
        """Host copies of the outputs of the last `run()`, keyed by output name."""

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """End to end: host arrays in, host arrays out, including the runtime's copies."""
        self.bind(inputs)
        self.run()
        return self.outputs()

    def prepare_concurrent(self, requests: int | None) -> int:
        """Get ready to keep `requests` inferences in flight (None: the runtime's choice).

        Called after `bind()`; returns the number of requests actually used.
        """
        return 1

    def run_concurrent(self) -> None:
        """One throughput round: `requests * ROUND_DEPTH` inferences, returning when all end."""
        for _ in range(self.ROUND_DEPTH):
            self.run()

    @classmethod
    def check_option(cls, key: str, value: str) -> None:
        """Raise ValueError, naming the valid choices, for a `--backend-option` this backend
        would not honour (a typo must not be ignored silently). Called before anything runs,
        in the planning process: import no runtime here unless the check needs it. This
        default accepts every option."""
        return None

    @abc.abstractmethod
    def describe(self) -> dict[str, str]:
        """Effective settings read back from the runtime: providers, precision, threads."""

    def profile(self, runs: int) -> RawProfile | None:
        """Per-node times from the runtime's own profiler over `runs` inferences of the bound
        inputs, after a warm-up. Called after the cell's timed trials, never inside a timed
        loop; runtimes whose profiling is a load-time setting build a profiled twin of the
        session for it. None: this backend cannot profile."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the session or compiled model."""
