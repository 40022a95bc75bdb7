"""bench: export PyTorch models to ONNX and benchmark them across inference runtimes.

The Python API (`bench.run`, `bench.load`, `bench.compare`, `bench.RunResult`,
`bench.BenchError`) is imported on first use: `import bench` stays light, since every worker
process imports it (no torch, runtime or pandas)."""

import importlib
from typing import Any

__version__ = "0.1.0"
SCHEMA_VERSION = 5
_API = ("run", "load", "compare", "RunResult")


def __getattr__(name: str) -> Any:
    # importlib, not an import statement: every module reads SCHEMA_VERSION from here, and
    # the API (which sits above the runner) is only loaded when an API name is asked for
    if name in _API:
        return getattr(importlib.import_module("bench.api"), name)
    if name == "BenchError":
        return importlib.import_module("bench.errors").BenchError
    raise AttributeError(f"module 'bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API, "BenchError"])
