"""Model registry: built-in names, `package.module:function` and `path/to/file.py:function`."""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from bench.errors import BenchError, meaningful_line
from bench.models.checks import ModelProblem, check_input, check_spec, flatten_outputs
from bench.models.spec import InputSpec, ModelSpec, OutputSpec, Tolerance

__all__ = ["MODELS", "InputSpec", "ModelSpec", "OutputSpec", "Tolerance", "resolve_model"]

#: Built-in models: name -> "module:function returning a ModelSpec".
MODELS: dict[str, str] = {
    "simple_cnn": "bench.models.simple_cnn:spec",
    "mlp": "bench.models.mlp:spec",
    "resnet_small": "bench.models.resnet_small:spec",
    "gru_seq": "bench.models.gru_seq:spec",
    "upsample_net": "bench.models.upsample_net:spec",
    "tiny_transformer": "bench.models.tiny_transformer:spec",
}


def _closest(name: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def _step(what: str) -> None:
    from bench.models.probe import step

    step(what)


def _load_function(ref: str):
    module_part, _, func_name = ref.rpartition(":")
    if module_part.endswith(".py"):
        path = Path(module_part)
        if not path.is_file():
            raise BenchError(f"model file not found: {path}")
        _step(f"importing {path}")
        mod_name = f"bench_user_model_{abs(hash(str(path.resolve())))}"
        module = sys.modules.get(mod_name)  # imported once per process, as Python's own do
        if module is None:
            spec = importlib.util.spec_from_file_location(mod_name, path)
            if spec is None or spec.loader is None:
                raise BenchError(f"cannot import model file {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                sys.modules.pop(mod_name, None)
                raise BenchError(
                    f"importing model file {path} failed: {type(exc).__name__}: {exc}"
                ) from exc
    else:
        # `python -m bench` has the working directory on sys.path; the `bench` console
        # script does not. The user's own packages resolve from there either way (appended,
        # so nothing of the user's shadows an installed package).
        if os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())
        _step(f"importing {module_part}")
        try:
            module = importlib.import_module(module_part)
        except ImportError as exc:
            raise BenchError(f"cannot import model module {module_part!r}: {exc}") from exc
        except Exception as exc:
            raise BenchError(
                f"importing {module_part!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
    func = getattr(module, func_name, None)
    if func is None:
        raise BenchError(f"{module_part!r} has no function {func_name!r}")
    return func


def display_name(ref: str) -> str:
    """How a model given by reference is named in cell ids and tables: a file by its stem
    (`path/to/my_model.py:make` -> `my_model:make`); the full reference stays in the record."""
    module_part, colon, function = ref.rpartition(":")
    if colon and module_part.endswith(".py"):
        return f"{Path(module_part).stem}:{function}"
    return ref


def resolve_model(
    ref: str,
    sizes: Mapping[str, int] | None = None,
    int_ranges: Mapping[str, tuple[int, int]] | None = None,
) -> ModelSpec:
    """A checked `ModelSpec` from a registry name, a `module:function` / `file.py:function`
    reference, or a path to an .onnx file (`sizes` gives its dynamic dimensions besides
    batch). `int_ranges` sets the [low, high) range of integer inputs by name (`--int-range`).
    A model bench cannot measure as given is one `BenchError` line naming `ref`."""
    if ref.endswith(".onnx"):
        from bench.models.onnx_file import onnx_file_spec

        spec = onnx_file_spec(ref, sizes)
    else:
        spec = _spec_from_function(ref)
    if int_ranges:
        spec = with_int_ranges(spec, int_ranges)
    try:
        check_spec(spec)
    except ModelProblem as problem:
        raise BenchError(f"{ref}: {problem}") from None
    return spec


def with_int_ranges(spec: ModelSpec, ranges: Mapping[str, tuple[int, int]]) -> ModelSpec:
    """`spec` with the value range of each integer input named in `ranges` replaced."""
    inputs = tuple(
        replace(i, low=ranges[i.name][0], high=ranges[i.name][1])
        if i.name in ranges and i.generator == "int"
        else i
        for i in spec.inputs
    )
    return replace(spec, inputs=inputs)


def _spec_from_function(ref: str) -> ModelSpec:
    target = MODELS.get(ref)
    if target is None and ":" not in ref:
        raise BenchError(
            f"unknown model {ref!r}{_closest(ref, list(MODELS))}; valid: {', '.join(MODELS)}, "
            "or package.module:function, or path/to/file.py:function, or path/to/model.onnx"
        )
    if target is None:  # the user's code: first in a child process (bench.models.probe)
        from bench.models.probe import in_place, probe_names_in_child

        if not in_place():
            probe_names_in_child(ref)
    try:
        function = _load_function(target or ref)
    except BenchError as exc:  # every line about the user's model starts with its name
        raise BenchError(f"{ref}: {exc}") from None
    _step(f"calling {ref.rpartition(':')[2]}()")
    try:
        result = function()
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(f"{ref}: calling it raised {type(exc).__name__}: {exc}") from exc
    if isinstance(result, tuple) and 2 <= len(result) <= 3:
        return _spec_from_tuple(ref, function, result)
    if not isinstance(result, ModelSpec):
        raise BenchError(
            f"{ref}: it returned {type(result).__name__}; expected a bench.models.ModelSpec or "
            "(nn.Module, [InputSpec, ...]) or (nn.Module, [InputSpec, ...], [output names])"
        )
    return result


def _spec_from_tuple(ref: str, function, result: tuple) -> ModelSpec:
    """A spec for a function returning (module, inputs[, output names]).

    The function is called again under the spec's seed whenever the module is built, so
    its weights are the same in every process. Without output names, one forward on example
    inputs names the outputs (`output_0`, ..., dict keys; see `flatten_outputs`)."""
    inputs = tuple(result[1])
    if not inputs or not all(isinstance(i, InputSpec) for i in inputs):
        raise BenchError(f"{ref}: the second item must be a list of bench.models.InputSpec")
    try:
        for item in inputs:
            check_input(item)
        probe = ModelSpec(ref, lambda: result[0], inputs, (OutputSpec("probe"),))
        check_spec(probe)
    except ModelProblem as problem:
        raise BenchError(f"{ref}: {problem}") from None
    given = len(result) == 3
    names = [str(n) for n in result[2]] if given else _probe_names(ref, result[0], probe)

    def build():
        return function()[0]

    # Sets only `build.__wrapped__`: the user's file is what the export cache key hashes.
    functools.update_wrapper(build, function, assigned=(), updated=())
    return ModelSpec(
        name=display_name(ref),
        build=build,
        inputs=inputs,
        outputs=tuple(OutputSpec(n) for n in names),
        description=f"user model {ref}",
    )


def _probe_names(ref: str, module, probe: ModelSpec) -> list[str]:
    """Output names from one forward of `module` on the probe's example inputs at batch 2: in
    a child process (bench.models.probe; run before anything of the model was imported here)
    unless this process is itself isolated (a worker)."""
    from bench.models.probe import in_place, probe_names_in_child

    if not in_place():
        return probe_names_in_child(ref)
    import torch

    sizes = {"batch": 2, **dict.fromkeys(probe.dynamic_dims(), 2)}
    example = probe.make_inputs(sizes, seed=0)
    _step("forward() on example inputs (batch 2)")
    try:
        with torch.inference_mode():
            out = module.eval()(*(torch.from_numpy(example[n]) for n in probe.input_names))
        return [name for name, _ in flatten_outputs(out)]
    except ModelProblem as problem:
        raise BenchError(f"{ref}: {problem}") from None
    except Exception as exc:
        raise BenchError(f"{ref}: forward() on example inputs raised "
                         f"{type(exc).__name__}: {meaningful_line(str(exc))}") from None  # fmt: skip
