"""OpenVINO on the CPU device, with the inference precision pinned and read back."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from bench.backends.base import (
    Backend,
    BackendUnavailable,
    LoadSpec,
    PrecisionMismatch,
    RawProfile,
    graph_node_names,
)

#: bench precision -> OpenVINO element type name for INFERENCE_PRECISION_HINT.
_PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16"}
#: Properties read back from the compiled model into the record.
_READ_BACK = (
    "INFERENCE_PRECISION_HINT",
    "INFERENCE_NUM_THREADS",
    "NUM_STREAMS",
    "PERFORMANCE_HINT",
    "OPTIMAL_NUMBER_OF_INFER_REQUESTS",
    "ENABLE_CPU_PINNING",
    "EXECUTION_DEVICES",
)


def _import_ov():
    try:
        import openvino
    except ImportError as exc:
        raise BackendUnavailable(f"openvino is not installed ({exc})") from exc
    return openvino


_NO_INPUTS: dict = {}


def _raw_infer():
    """The binding's own `InferRequest.infer(inputs, share_outputs, decode_strings)`.

    The public `InferRequest.infer()` wraps it and builds an OVDict of output copies on every
    call, about 0.9 µs of Python per inference (measured on simple_cnn, where the inference
    itself is 20 µs); the outputs are read afterwards through `get_tensor` anyway. Falls back
    to the public method where the binding is laid out differently; the backend contract
    suite runs this path against the installed OpenVINO.
    """
    try:
        from openvino._pyopenvino import InferRequest
    except ImportError:
        return lambda request, inputs, share, decode: request.infer()
    return InferRequest.infer


def _property_text(value: Any) -> str:
    if hasattr(value, "get_type_name"):
        return value.get_type_name()
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value).split(".")[-1]


@functools.lru_cache(maxsize=8)
def _device_properties(device: str) -> dict[str, str] | None:
    """{property: "RO" | "RW" | "WO"} of `device`, asked of OpenVINO once per process; None
    without OpenVINO or the device."""
    try:
        supported = _import_ov().Core().get_property(device, "SUPPORTED_PROPERTIES")
    except Exception:
        return None
    return {str(name): str(mode) for name, mode in dict(supported).items()}


class OpenVinoCpu(Backend):
    """OpenVINO Runtime, CPU plugin. Inputs are set once on the infer request.

    Options: `shapes=static` (default: reshape to the cell's shapes, as benchmark_app's
    `-shape` does) or `shapes=dynamic`; any other KEY=VALUE goes to `compile_model`.
    """

    name = "openvino"
    device = "cpu"
    consumes = "onnx"
    precisions = ("fp32", "bf16")
    ov_device = "CPU"

    def __init__(self) -> None:
        self._core: Any = None
        self._compiled: Any = None
        self._request: Any = None
        self._queue: Any = None
        self._tensors: dict[str, Any] = {}
        self._shapes = "static"
        self._output_names: list[str] = []
        self._infer: Any = None
        self._config: dict[str, Any] = {}
        self._spec: LoadSpec | None = None

    @classmethod
    def check_option(cls, key: str, value: str) -> None:
        """`shapes`, or a property the device lets a compiled model set (asked of OpenVINO:
        its list differs between versions and devices); without OpenVINO, unchecked here
        (the cell then says it cannot run)."""
        if key == "shapes":
            if value not in ("static", "dynamic"):
                raise ValueError(f"shapes={value!r}; valid: static, dynamic")
            return
        supported = _device_properties(cls.ov_device)
        if supported is None:  # no OpenVINO or no device: the cell says why it cannot run
            return
        settable = sorted(name for name, mode in supported.items() if "W" in mode)
        if key not in settable:
            near = difflib.get_close_matches(key.upper(), settable, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            what = "a read-only property" if key in supported else "an unknown option"
            raise ValueError(f"{key!r} is {what}{hint}; valid: shapes, {', '.join(settable)}")

    @classmethod
    def check_available(cls) -> None:
        ov = _import_ov()
        devices = ov.Core().available_devices
        if cls.ov_device not in devices:
            raise BackendUnavailable(
                f"OpenVINO sees no {cls.ov_device} device (devices: {', '.join(devices)})"
            )

    def load(self, spec: LoadSpec) -> None:
        ov = _import_ov()
        core = self._core = ov.Core()
        model = core.read_model(spec.source)
        options = dict(spec.options)
        self._shapes = options.pop("shapes", "static")
        if self._shapes not in ("static", "dynamic"):
            raise ValueError(f"openvino option shapes={self._shapes!r}; valid: static, dynamic")
        if self._shapes == "static" and spec.input_shapes:
            model.reshape({name: list(shape) for name, shape in spec.input_shapes.items()})
        wanted = _PRECISION_HINTS[spec.precision]
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "THROUGHPUT" if spec.mode == "throughput" else "LATENCY",
            "INFERENCE_PRECISION_HINT": wanted,
        }
        if spec.threads:
            config["INFERENCE_NUM_THREADS"] = spec.threads
        config.update(options)
        self._config, self._spec = config, spec  # --profile compiles a twin from these
        self._compiled = core.compile_model(model, self.ov_device, config)
        effective = _property_text(self._compiled.get_property("INFERENCE_PRECISION_HINT"))
        if effective != wanted:
            raise PrecisionMismatch(
                f"asked OpenVINO for {wanted} inference, the compiled model uses {effective}"
            )
        self._request = self._compiled.create_infer_request()
        self._output_names = self._match_output_names(spec.output_names)
        self._infer = _raw_infer()

    def _match_output_names(self, expected: tuple[str, ...]) -> list[str]:
        """One name per compiled output. A tensor can carry several names in OpenVINO, and
        `get_any_name()` may pick an internal one: prefer the name the caller knows."""
        names = []
        for index, out in enumerate(self._compiled.outputs):
            known = out.get_names()
            match = next((n for n in expected if n in known), None)
            if (
                match is None
                and index < len(expected)
                and len(expected) == len(self._compiled.outputs)
            ):
                match = expected[index]  # same order as the ONNX graph's outputs
            names.append(match or out.get_any_name())
        return names

    def bind(self, inputs: Mapping[str, np.ndarray]) -> None:
        ov = _import_ov()
        expected = sorted(i.get_any_name() for i in self._compiled.inputs)
        if expected != sorted(inputs):
            raise ValueError(f"model inputs are {expected}, got {sorted(inputs)}")
        self._tensors = {n: ov.Tensor(np.ascontiguousarray(a)) for n, a in inputs.items()}
        for name, tensor in self._tensors.items():
            self._request.set_tensor(name, tensor)

    def prepare_concurrent(self, requests: int | None) -> int:
        ov = _import_ov()
        count = requests or int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._queue = ov.AsyncInferQueue(self._compiled, count)
        for index in range(count):
            for name, tensor in self._tensors.items():
                self._queue[index].set_tensor(name, tensor)
        return count

    def run_concurrent(self) -> None:
        queue = self._queue
        for _ in range(len(queue) * self.ROUND_DEPTH):
            queue.start_async()  # blocks while every request is busy
        queue.wait_all()

    def run(self) -> None:
        self._infer(self._request, _NO_INPUTS, True, True)

    def outputs(self) -> dict[str, np.ndarray]:
        return {
            name: np.array(self._request.get_tensor(out).data, copy=True)
            for name, out in zip(self._output_names, self._compiled.outputs, strict=True)
        }

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self._request.infer(dict(inputs))
        return {
            name: np.array(results[out], copy=True)
            for name, out in zip(self._output_names, self._compiled.outputs, strict=True)
        }

    def profile(self, runs: int) -> RawProfile:
        """OpenVINO's performance counters on a twin compiled with PERF_COUNT (a compile-time
        setting), same model, settings and input tensors: per executed node its type, the
        kernel it ran (exec type: `brgconv_avx512_f32`, `ref_any`, ...) and its time."""
        from bench.backends.profiling import ov_nodes

        assert self._spec is not None
        model = self._core.read_model(self._spec.source)  # read again: the timed worker
        if self._shapes == "static" and self._spec.input_shapes:  # never keeps a model copy
            model.reshape({n: list(shape) for n, shape in self._spec.input_shapes.items()})
        compiled = self._core.compile_model(
            model, self.ov_device, {**self._config, "PERF_COUNT": "YES"}
        )
        request = compiled.create_infer_request()
        for name, tensor in self._tensors.items():
            request.set_tensor(name, tensor)
        per_run = []
        for index in range(runs + 3):  # three warm-up inferences first
            request.infer()
            if index >= 3:
                per_run.append([
                    (p.node_name, p.node_type, p.exec_type, p.real_time.total_seconds() * 1e6)
                    for p in request.get_profiling_info()
                    if str(p.status).split(".")[-1] == "EXECUTED"
                ])  # fmt: skip
        nodes, trace = ov_nodes(per_run, graph_node_names(self._spec.source))
        return RawProfile("openvino performance counters (PERF_COUNT)", runs, nodes, trace)

    def describe(self) -> dict[str, str]:
        ov = _import_ov()
        settings = {"runtime": f"openvino {ov.get_version()}", "shapes": self._shapes}
        for key in _READ_BACK:
            try:
                settings[key] = _property_text(self._compiled.get_property(key))
            except RuntimeError:
                continue
        settings["precision"] = settings.get("INFERENCE_PRECISION_HINT", "unknown")
        settings["device_name"] = str(self._core.get_property(self.ov_device, "FULL_DEVICE_NAME"))
        return settings

    def close(self) -> None:
        self._queue = None
        self._request = None
        self._compiled = None
        self._core = None
