"""Backend registry: a name maps to "module:Class" plus an install hint.

Importing this package imports no runtime, so `bench list` works where runtimes are missing.
Third-party backends join through the entry-point group `bench.backends`
(`name = "package.module:Class"`); their install hint names the distribution that declares
the entry point (`pip install <dist>`). A name is registered once: `register_backend` refuses
to replace an existing name unless asked (`replace=True`), and an entry point that reuses a
registered name (a built-in's, or another distribution's) is ignored with a warning and
listed in `IGNORED_ENTRY_POINTS`, so a plugin can never quietly shadow `ort-cpu`.
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from bench.backends.base import Backend, BackendUnavailable, LoadSpec
from bench.backends.ort import OrtExecutionProvider
from bench.errors import BenchError

__all__ = [
    "BACKENDS",
    "IGNORED_ENTRY_POINTS",
    "Backend",
    "BackendEntry",
    "BackendUnavailable",
    "LoadSpec",
    "OrtExecutionProvider",
    "availability",
    "backend_entry",
    "load_backend_class",
    "register_backend",
    "register_entry_points",
]

_ORT_GPU_SWAP = "pip uninstall -y onnxruntime && pip install -e '.[gpu]'"


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend lives and how to install its runtime.

    `dist` is the distribution that declared it through an entry point (None for backends
    registered in code, the built-ins included).
    """

    name: str
    target: str
    install_hint: str
    dist: str | None = None

    @property
    def origin(self) -> str:
        """Who registered it, for messages: the distribution, or "registered in code"."""
        return f"entry point of {self.dist}" if self.dist else "registered in code"


BACKENDS: dict[str, BackendEntry] = {}
#: Entry points that were not registered, each with the reason (a name already taken).
IGNORED_ENTRY_POINTS: list[str] = []


def register_backend(name: str, target: str, install_hint: str, *, replace: bool = False) -> None:
    """Add a backend: `target` is "module:Class"; the module is imported only when used.

    A name that is already registered raises `BenchError` naming what holds it, unless
    `replace=True`; registering the very same entry again is a no-op.
    """
    entry = BackendEntry(name, target, install_hint)
    existing = BACKENDS.get(name)
    if existing is not None and existing != entry and not replace:
        raise BenchError(
            f"backend {name!r} is already registered as {existing.target} "
            f"({existing.origin}); pass replace=True to replace it"
        )
    BACKENDS[name] = entry


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


def _dist_name(ep: EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "name", None) if dist is not None else None


def register_entry_points(eps: Iterable[EntryPoint] | None = None) -> list[str]:
    """Register the backends declared in the entry-point group `bench.backends`.

    Called once when this package is imported; `eps` defaults to the installed entry points.
    An entry point whose name is already registered keeps the registered backend: it is
    skipped with a warning and the reason is appended to `IGNORED_ENTRY_POINTS`. Returns the
    names registered.
    """
    added = []
    for ep in entry_points(group="bench.backends") if eps is None else eps:
        dist = _dist_name(ep)
        source = f"entry point {ep.name} = {ep.value!r}" + (f" of {dist}" if dist else "")
        existing = BACKENDS.get(ep.name)
        if existing is not None:
            if existing.target == ep.value and existing.dist == dist:
                continue  # the same entry point seen twice (one distribution on two paths)
            reason = (
                f"ignored {source}: backend {ep.name!r} is already registered as "
                f"{existing.target} ({existing.origin})"
            )
            IGNORED_ENTRY_POINTS.append(reason)
            warnings.warn(f"bench: {reason}", stacklevel=2)
            continue
        hint = f"pip install {dist}" if dist else f"install the package that provides {ep.value}"
        BACKENDS[ep.name] = BackendEntry(ep.name, ep.value, hint, dist)
        added.append(ep.name)
    return added


register_entry_points()


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
        raise TypeError(f"{target} is not a bench.backends.Backend subclass")
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
