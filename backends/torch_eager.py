"""PyTorch eager: the reference and the speed baseline. Consumes the model, not an export."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from bench.backends.base import Backend, BackendUnavailable, LoadSpec, RawProfile

_DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise BackendUnavailable(f"torch is not installed ({exc})") from exc
    return torch


class TorchEager(Backend):
    """`module(*inputs)` under `torch.inference_mode()`."""

    name = "torch"
    device = "cpu"
    consumes = "torch"
    precisions = ("fp32", "bf16")
    torch_device: ClassVar[str] = "cpu"

    def __init__(self) -> None:
        self._module: Any = None
        self._args: list[Any] = []
        self._result: Any = ()
        self._output_names: list[str] = []
        self._input_names: list[str] = []
        self._dtype: Any = None

    @classmethod
    def check_available(cls) -> None:
        _import_torch()

    def load(self, spec: LoadSpec) -> None:
        torch = _import_torch()
        from bench.models import resolve_model

        model = resolve_model(spec.source)
        if spec.threads:
            torch.set_num_threads(spec.threads)
        self._dtype = getattr(torch, _DTYPES[spec.precision])
        self._module = model.build_module().to(device=self.torch_device, dtype=self._dtype)
        self._input_names = model.input_names
        self._output_names = model.output_names

    def _to_device(self, array: np.ndarray) -> Any:
        torch = _import_torch()
        tensor = torch.from_numpy(np.ascontiguousarray(array)).to(self.torch_device)
        return tensor.to(self._dtype) if tensor.is_floating_point() else tensor

    def bind(self, inputs: Mapping[str, np.ndarray]) -> None:
        if sorted(self._input_names) != sorted(inputs):
            raise ValueError(f"model inputs are {self._input_names}, got {sorted(inputs)}")
        self._args = [self._to_device(inputs[name]) for name in self._input_names]

    def run(self) -> None:
        torch = _import_torch()
        with torch.inference_mode():
            self._result = self._module(*self._args)  # flattened in outputs(), untimed

    def outputs(self) -> dict[str, np.ndarray]:
        from bench.models.checks import named_outputs

        arrays = {}
        for name, tensor in named_outputs(self._result, self._output_names):
            tensor = tensor.detach().cpu()
            arrays[name] = (tensor.float() if tensor.is_floating_point() else tensor).numpy()
        return arrays

    def profile(self, runs: int) -> RawProfile:
        """`torch.profiler` operator averages over `runs` forwards (after three warm-up
        forwards), by self time, with its Chrome trace."""
        import json
        import tempfile
        from pathlib import Path

        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        from bench.backends.profiling import torch_nodes

        for _ in range(3):
            self.run()
        activities = [ProfilerActivity.CPU]
        if self.torch_device == "cuda":
            activities.append(ProfilerActivity.CUDA)
        with torch_profile(activities=activities) as prof:
            for _ in range(runs):
                self.run()
        with tempfile.TemporaryDirectory(prefix="bench-torch-profile-") as folder:
            path = Path(folder) / "trace.json"
            prof.export_chrome_trace(str(path))
            data = json.loads(path.read_text())
        trace = data.get("traceEvents", []) if isinstance(data, dict) else data
        precision = {"float32": "fp32", "bfloat16": "bf16"}.get(
            str(self._dtype).removeprefix("torch."), ""
        )
        nodes = torch_nodes(prof.key_averages(), runs, precision)
        if self.torch_device == "cuda":
            for node in nodes:
                node.device = self.torch_device
        return RawProfile("torch.profiler key_averages (self time)", runs, nodes, trace)

    def describe(self) -> dict[str, str]:
        torch = _import_torch()
        return {
            "runtime": f"torch {torch.__version__}",
            "device": self.torch_device,
            "precision": str(self._dtype).removeprefix("torch."),
            "threads": str(torch.get_num_threads()),
            "mode": "eager, inference_mode",
        }

    def close(self) -> None:
        self._module = None
        self._args = []
        self._result = ()


class TorchCuda(TorchEager):
    """PyTorch eager on the GPU; `run()` synchronises so the timing covers the kernels."""

    name = "torch-cuda"
    device = "cuda"
    torch_device = "cuda"

    @classmethod
    def check_available(cls) -> None:
        torch = _import_torch()
        if not torch.cuda.is_available():
            raise BackendUnavailable(f"torch {torch.__version__} sees no CUDA device")

    def run(self) -> None:
        super().run()
        _import_torch().cuda.synchronize()

    def describe(self) -> dict[str, str]:
        settings = super().describe()
        settings["device_name"] = _import_torch().cuda.get_device_name()
        return settings
