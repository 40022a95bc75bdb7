"""Model registry: built-in names, `package.module:function` and `path/to/file.py:function`."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
from pathlib import Path

from bench.errors import BenchError
from models.spec import InputSpec, ModelSpec, OutputSpec, Tolerance

__all__ = ["MODELS", "InputSpec", "ModelSpec", "OutputSpec", "Tolerance", "resolve_model"]

#: Built-in models: name -> "module:function returning a ModelSpec".
MODELS: dict[str, str] = {
    "simple_cnn": "models.simple_cnn:spec",
}


def _closest(name: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def _load_function(ref: str):
    module_part, _, func_name = ref.rpartition(":")
    if module_part.endswith(".py"):
        path = Path(module_part)
        if not path.is_file():
            raise BenchError(f"model file not found: {path}")
        mod_name = f"bench_user_model_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise BenchError(f"cannot import model file {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_part)
        except ImportError as exc:
            raise BenchError(f"cannot import model module {module_part!r}: {exc}") from exc
    func = getattr(module, func_name, None)
    if func is None:
        raise BenchError(f"{module_part!r} has no function {func_name!r}")
    return func


def resolve_model(ref: str) -> ModelSpec:
    """A `ModelSpec` from a registry name or a `module:function` / `file.py:function` reference."""
    target = MODELS.get(ref)
    if target is None and ":" not in ref:
        raise BenchError(
            f"unknown model {ref!r}{_closest(ref, list(MODELS))}; valid: {', '.join(MODELS)}, "
            "or package.module:function, or path/to/file.py:function"
        )
    result = _load_function(target or ref)()
    if not isinstance(result, ModelSpec):
        raise BenchError(f"{ref!r} returned {type(result).__name__}, expected a models.ModelSpec")
    return result
