"""bench: export PyTorch models to ONNX and benchmark them across inference runtimes.

The Python API (`bench.run`, `bench.load`, `bench.compare`, `bench.RunResult`,
`bench.BenchError`) is imported on first use: `import bench` stays light, since every worker
process imports it (no torch, runtime or pandas)."""

from typing import Any

__version__ = "0.1.0"
SCHEMA_VERSION = 4
_API = ("run", "load", "compare", "RunResult")


def __getattr__(name: str) -> Any:
    if name in _API:
        from bench import api

        return getattr(api, name)
    if name == "BenchError":
        from bench.errors import BenchError

        return BenchError
    raise AttributeError(f"module 'bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API, "BenchError"])
