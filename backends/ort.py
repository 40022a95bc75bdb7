"""ONNX Runtime backends: one class per execution provider, timed through IO binding.

`OrtExecutionProvider` is the public base: a backend for any execution provider is a
subclass that names the provider, its options and where IO binding places tensors. ONNX
Runtime with the OpenVINO or TensorRT execution provider, for example:

```python
from bench.backends import OrtExecutionProvider


class OrtOpenVino(OrtExecutionProvider):
    name = "ort-openvino"
    device = "cpu"
    provider = "OpenVINOExecutionProvider"
    provider_options = {"device_type": "CPU", "precision": "FP32"}


class OrtTensorRT(OrtExecutionProvider):
    name = "ort-trt"
    device = "cuda"
    provider = "TensorrtExecutionProvider"
    provider_options = {"trt_fp16_enable": "False"}
    fallback_providers = ("CUDAExecutionProvider", "CPUExecutionProvider")
    ort_device = "cuda"
```

Options (`LoadSpec.options`, from `--backend-option BACKEND.KEY=VALUE`): keys prefixed
`provider.` are provider options and override the class's `provider_options`
(`--backend-option ort-trt.provider.trt_fp16_enable=True`); `graph_optimization_level`,
`inter_op_num_threads` and `execution_mode` set the session options of those names; any other
key is a session config entry (`SessionOptions.add_session_config_entry`).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from bench.backends.base import (
    Backend,
    BackendUnavailable,
    LoadSpec,
    RawProfile,
    graph_node_names,
)

__all__ = ["PROVIDER_OPTION_PREFIX", "OrtCpu", "OrtCuda", "OrtExecutionProvider", "split_options"]

#: `LoadSpec.options` keys with this prefix are provider options, the rest session options.
PROVIDER_OPTION_PREFIX = "provider."

#: Inferences run before the profiled ones (first-run allocations are not steady state).
PROFILE_WARMUP = 3

_OPT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def _import_ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailable(f"onnxruntime is not installed ({exc})") from exc
    return onnxruntime


def split_options(options: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(session options, provider options) from a backend's options: the keys prefixed
    `provider.` are provider options, with the prefix removed."""
    session, provider = {}, {}
    for key, value in options.items():
        if key.startswith(PROVIDER_OPTION_PREFIX):
            name = key.removeprefix(PROVIDER_OPTION_PREFIX)
            if not name:
                raise ValueError(f"option {key!r}: expected {PROVIDER_OPTION_PREFIX}NAME=VALUE")
            provider[name] = value
        else:
            session[key] = value
    return session, provider


class OrtExecutionProvider(Backend):
    """ONNX Runtime with one execution provider; subclasses name it.

    `provider` must be the first provider the session actually uses (`get_providers()`):
    ONNX Runtime only warns and runs on the CPU when a provider cannot load, so such a
    session is refused with `BackendUnavailable`, never timed. `fallback_providers` are listed
    after it for the nodes it has no kernel for. `provider_options` are the class's options
    for `provider` (strings, as ONNX Runtime takes them); `provider.KEY` options override them.
    `ort_device` is where IO binding places inputs and outputs ("cpu" or "cuda").
    """

    consumes = "onnx"
    device: ClassVar[str] = "cpu"
    provider: ClassVar[str]
    provider_options: ClassVar[Mapping[str, str]] = {}
    fallback_providers: ClassVar[tuple[str, ...]] = ()
    ort_device: ClassVar[str] = "cpu"

    def __init__(self) -> None:
        self._session: Any = None
        self._binding: Any = None
        self._bound: list[Any] = []
        self._pool: Any = None
        self._bindings: list[Any] = []
        self._provider_options: dict[str, str] = {}
        self._spec: LoadSpec | None = None

    @classmethod
    def check_available(cls) -> None:
        ort = _import_ort()
        providers = ort.get_available_providers()
        if cls.provider not in providers:
            raise BackendUnavailable(
                f"onnxruntime {ort.__version__} has no {cls.provider} "
                f"(available: {', '.join(providers)})"
            )

    @classmethod
    def check_option(cls, key: str, value: str) -> None:
        """The session options bench sets by name, `provider.KEY`, or an ONNX Runtime session
        config key (they are namespaced: `session.`, `optimization.`, `mlas.`, ...); ONNX
        Runtime itself ignores a config key it does not know, so a bare typo is refused."""
        if key.startswith(PROVIDER_OPTION_PREFIX):
            return
        checks = {
            "graph_optimization_level": (lambda v: v in _OPT_LEVELS, ", ".join(_OPT_LEVELS)),
            "inter_op_num_threads": (lambda v: v.isdigit() and 1 <= int(v) <= 4096, "1 to 4096"),
            "execution_mode": (lambda v: v in ("sequential", "parallel"), "sequential, parallel"),
        }
        if key in checks:
            ok, valid = checks[key]
            if not ok(value):
                raise ValueError(f"{key}={value!r}; valid: {valid}")
            return
        if key == "intra_op_num_threads":
            raise ValueError("intra_op_num_threads is set by --threads (which records it)")
        if "." not in key:
            near = difflib.get_close_matches(key, [*checks, "intra_op_num_threads"], n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ValueError(
                f"unknown option {key!r}{hint}; valid: {', '.join(checks)}, "
                f"{PROVIDER_OPTION_PREFIX}KEY, or a session config key such as "
                "session.intra_op.allow_spinning"
            )

    def _session_options(self, spec: LoadSpec, session_options: Mapping[str, str]) -> Any:
        ort = _import_ort()
        options = ort.SessionOptions()
        if spec.threads:
            options.intra_op_num_threads = spec.threads
        for key, value in session_options.items():
            if key == "graph_optimization_level":
                if value not in _OPT_LEVELS:
                    raise ValueError(
                        f"graph_optimization_level {value!r}; valid: {', '.join(_OPT_LEVELS)}"
                    )
                options.graph_optimization_level = getattr(
                    ort.GraphOptimizationLevel, _OPT_LEVELS[value]
                )
            elif key == "inter_op_num_threads":
                options.inter_op_num_threads = int(value)
            elif key == "execution_mode":
                options.execution_mode = getattr(ort.ExecutionMode, f"ORT_{value.upper()}")
            else:
                options.add_session_config_entry(key, value)
        return options

    def load(self, spec: LoadSpec) -> None:
        self._spec = spec
        self._session = self._new_session(spec)

    def _new_session(self, spec: LoadSpec, profile_prefix: str | None = None) -> Any:
        """A session of `spec`; with `profile_prefix`, ONNX Runtime's session profiling on
        (a load-time setting: the profiled pass gets a twin of the timed session)."""
        ort = _import_ort()
        session_options, user_provider_options = split_options(spec.options)
        self._provider_options = {
            **{key: str(value) for key, value in self.provider_options.items()},
            **user_provider_options,
        }
        providers: list[Any] = [(self.provider, self._provider_options)]
        providers += [p for p in self.fallback_providers if p != self.provider]
        options = self._session_options(spec, session_options)
        if profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        session = ort.InferenceSession(spec.source, options, providers=providers)
        active = session.get_providers()
        if not active or active[0] != self.provider:
            # ONNX Runtime only warns and runs on the CPU when a provider cannot load.
            raise BackendUnavailable(
                f"{self.provider} did not load; ONNX Runtime fell back to {', '.join(active)}"
            )
        return session

    def bind(self, inputs: Mapping[str, np.ndarray]) -> None:
        ort = _import_ort()
        expected = [i.name for i in self._session.get_inputs()]
        if sorted(expected) != sorted(inputs):
            raise ValueError(f"model inputs are {expected}, got {sorted(inputs)}")
        self._bound = [
            (name, ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a), self.ort_device, 0))
            for name, a in inputs.items()
        ]
        self._binding = self._new_binding()

    def _new_binding(self, session: Any = None) -> Any:
        session = session or self._session
        binding = session.io_binding()
        for name, value in self._bound:
            binding.bind_ortvalue_input(name, value)
        for output in session.get_outputs():
            binding.bind_output(output.name, self.ort_device)
        return binding

    def prepare_concurrent(self, requests: int | None) -> int:
        from concurrent.futures import ThreadPoolExecutor

        count = requests or 2
        self._bindings = [self._new_binding() for _ in range(count)]
        self._pool = ThreadPoolExecutor(max_workers=count)
        return count

    def _run_many(self, binding: Any) -> None:
        for _ in range(self.ROUND_DEPTH):
            self._session.run_with_iobinding(binding)
            if self.ort_device != "cpu":
                binding.synchronize_outputs()

    def run_concurrent(self) -> None:
        # run_with_iobinding releases the GIL: the requests really run at once on one session.
        for future in [self._pool.submit(self._run_many, b) for b in self._bindings]:
            future.result()

    def run(self) -> None:
        # run_options stays None: in onnxruntime 1.32 passing a RunOptions object costs about
        # 25 µs per call in the Python wrapper (docs/design.md, measured facts).
        self._session.run_with_iobinding(self._binding)
        if self.ort_device != "cpu":
            self._binding.synchronize_outputs()

    def outputs(self) -> dict[str, np.ndarray]:
        names = [o.name for o in self._session.get_outputs()]
        return dict(zip(names, self._binding.copy_outputs_to_cpu(), strict=True))

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self._session.get_outputs()]
        return dict(zip(names, self._session.run(names, dict(inputs)), strict=True))

    def profile(self, runs: int) -> RawProfile:
        """ONNX Runtime's session profiling on a twin session, same options and inputs:
        per node its op type, execution provider and output element type."""
        import json
        import tempfile
        from pathlib import Path

        from bench.backends.profiling import ort_nodes

        assert self._spec is not None
        with tempfile.TemporaryDirectory(prefix="bench-ort-profile-") as folder:
            session = self._new_session(self._spec, str(Path(folder) / "ort"))
            binding = self._new_binding(session)
            for _ in range(runs + PROFILE_WARMUP):
                session.run_with_iobinding(binding)
                if self.ort_device != "cpu":
                    binding.synchronize_outputs()
            events = json.loads(Path(session.end_profiling()).read_text())
        nodes, trace, run_us = ort_nodes(events, runs, graph_node_names(self._spec.source))
        return RawProfile("onnxruntime session profiling", runs, nodes, trace, run_us)

    def describe(self) -> dict[str, str]:
        ort = _import_ort()
        options = self._session.get_session_options()
        threads = options.intra_op_num_threads
        settings = {
            "runtime": f"onnxruntime {ort.__version__}",
            "providers": ",".join(self._session.get_providers()),
            "intra_op_num_threads": str(threads) if threads else "0 (ORT default: physical cores)",
            "inter_op_num_threads": str(options.inter_op_num_threads),
            "graph_optimization_level": str(options.graph_optimization_level).split(".")[-1],
            "execution_mode": str(options.execution_mode).split(".")[-1],
            "precision": "fp32 (graph dtypes)",
        }
        if self._provider_options:
            settings["provider_options"] = self._describe_provider_options()
        return settings

    def _describe_provider_options(self) -> str:
        """The provider options asked for, each with what ONNX Runtime reports back for it
        (`get_provider_options()`; some providers, the CPU one among them, report none)."""
        reported = self._session.get_provider_options().get(self.provider, {})
        shown = []
        for key, value in sorted(self._provider_options.items()):
            if key not in reported:
                shown.append(f"{key}={value} (not read back)")
            elif str(reported[key]) != value:
                shown.append(f"{key}={value} (ONNX Runtime reports {reported[key]})")
            else:
                shown.append(f"{key}={value}")
        return ", ".join(shown)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self._bindings = []
        self._binding = None
        self._bound = []
        self._session = None


class OrtCpu(OrtExecutionProvider):
    """ONNX Runtime with the CPU execution provider."""

    name = "ort-cpu"
    device = "cpu"
    provider = "CPUExecutionProvider"
    ort_device = "cpu"


class OrtCuda(OrtExecutionProvider):
    """ONNX Runtime with the CUDA execution provider; inputs and outputs live on the GPU."""

    name = "ort-cuda"
    device = "cuda"
    provider = "CUDAExecutionProvider"
    # The CPU provider stays listed so nodes without a CUDA kernel can run; the session is
    # refused in `load` unless CUDA is the first provider actually in use.
    fallback_providers = ("CPUExecutionProvider",)
    ort_device = "cuda"
