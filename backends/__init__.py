"""Backend registry: a name maps to "module:Class" plus an install hint.

Importing this package imports no runtime, so `bench list` works where runtimes are missing.
Third-party backends join through the entry-point group `bench.backends`
(`name = "package.module:Class"`).
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points

from bench.backends.base import Backend, BackendUnavailable, LoadSpec
from bench.errors import BenchError

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendEntry",
    "BackendUnavailable",
    "LoadSpec",
    "availability",
    "backend_entry",
    "load_backend_class",
    "register_backend",
]

_ORT_GPU_SWAP = "pip uninstall -y onnxruntime && pip install -e '.[gpu]'"


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend lives and how to install its runtime."""

    name: str
    target: str
    install_hint: str


BACKENDS: dict[str, BackendEntry] = {}


def register_backend(name: str, target: str, install_hint: str) -> None:
    """Add a backend: `target` is "module:Class"; the module is imported only when used."""
    BACKENDS[name] = BackendEntry(name, target, install_hint)


register_backend("ort-cpu", "bench.backends.ort:OrtCpu", "pip install onnxruntime")
register_backend(
    "ort-cuda", "bench.backends.ort:OrtCuda", f"needs an NVIDIA GPU and {_ORT_GPU_SWAP}"
)
register_backend("openvino", "bench.backends.ov:OpenVinoCpu", "pip install openvino")
register_backend("torch", "bench.backends.torch_eager:TorchEager", "pip install torch")
register_backend(
    "torch-cuda",
    "bench.backends.torch_eager:TorchCuda",
    "needs an NVIDIA GPU and a CUDA build of torch",
)

for _ep in entry_points(group="bench.backends"):
    BACKENDS.setdefault(_ep.name, BackendEntry(_ep.name, _ep.value, f"see {_ep.value}"))


def backend_entry(name: str) -> BackendEntry:
    """The registry entry for `name`, or a `BenchError` naming the valid choices."""
    try:
        return BACKENDS[name]
    except KeyError:
        near = difflib.get_close_matches(name, list(BACKENDS), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise BenchError(f"unknown backend {name!r}{hint}; valid: {', '.join(BACKENDS)}") from None


def load_backend_class(target: str) -> type[Backend]:
    """Import "module:Class" and check that it is a `Backend`."""
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"{target} is not a backends.Backend subclass")
    return cls


def availability(name: str) -> tuple[bool, str]:
    """(available, reason) for a registered backend; imports its runtime."""
    entry = backend_entry(name)
    try:
        load_backend_class(entry.target).check_available()
    except BackendUnavailable as exc:
        return False, f"{exc} (install: {entry.install_hint})"
    except ImportError as exc:
        return False, f"{exc} (install: {entry.install_hint})"
    return True, ""
