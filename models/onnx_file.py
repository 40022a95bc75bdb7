"""A model given as an existing .onnx file: inputs described from the file itself."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bench.errors import BenchError
from bench.models.spec import InputSpec, ModelSpec, OutputSpec

#: Integer inputs of an ONNX file draw ids from 0 up to this (exclusive) unless
#: `--int-range NAME=LOW:HIGH` says otherwise (a table of fewer rows needs it).
DEFAULT_INT_HIGH = 10
#: Largest size of one axis given with --shape (as --batch-sizes and --dims allow).
MAX_SIZE = 65536

#: ONNX TensorProto element type -> numpy dtype name and value generator.
_ELEMENT_TYPES = {
    1: ("float32", "normal"),
    10: ("float16", "normal"),
    11: ("float64", "normal"),
    7: ("int64", "int"),
    6: ("int32", "int"),
    9: ("bool", "bool"),
}


def check_external_data(model, folder: Path) -> None:
    """Refuse external-data locations that leave the model's folder (or do not exist)."""
    from onnx.external_data_helper import _get_all_tensors

    root = folder.resolve()
    for tensor in _get_all_tensors(model):
        for entry in tensor.external_data:
            if entry.key != "location":
                continue
            target = (root / entry.value).resolve()
            if not target.is_relative_to(root):
                raise BenchError(
                    f"external data {entry.value!r} of tensor {tensor.name!r} points outside "
                    f"the model's folder {root}"
                )
            if not target.is_file():
                raise BenchError(f"external data file {entry.value!r} is missing beside the model")


def onnx_file_spec(path: str, sizes: Mapping[str, int] | None = None) -> ModelSpec:
    """A `ModelSpec` for an ONNX file. The first dynamic axis of each input is the batch;
    every other dynamic dimension needs a size from `sizes` (`--dims`, `--shape`)."""
    import onnx

    file = Path(path)
    if not file.is_file():
        raise BenchError(f"ONNX file not found: {file}")
    try:
        model = onnx.load(str(file), load_external_data=False)
        check_external_data(model, file.parent)
        onnx.checker.check_model(str(file))
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(f"cannot read ONNX file {file}: {type(exc).__name__}: {exc}") from None
    sizes = dict(sizes or {})
    initializers = {init.name for init in model.graph.initializer}
    inputs, needed = [], {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        if tensor.elem_type not in _ELEMENT_TYPES:
            raise BenchError(
                f"{file}: input {value.name!r} has an unsupported element type {tensor.elem_type}"
            )
        dtype, generator = _ELEMENT_TYPES[tensor.elem_type]
        shape: list[int | str] = []
        for axis, dim in enumerate(tensor.shape.dim):
            if dim.dim_value:
                shape.append(int(dim.dim_value))
            elif axis == 0:
                shape.append("batch")
            else:
                name = dim.dim_param or f"{value.name}_dim{axis}"
                shape.append(name)
                needed[name] = value.name
        high = DEFAULT_INT_HIGH if generator == "int" else None
        inputs.append(InputSpec(value.name, tuple(shape), dtype, generator, high=high))
    missing = sorted(set(needed) - set(sizes))
    if missing:
        name = missing[0]
        raise BenchError(
            f"{file}: input {needed[name]!r} has dynamic dimension {name!r}; give its size with "
            f"--dims {name}=SIZE or --shape {needed[name]}=AxBx..."
        )
    return ModelSpec(
        name=file.stem,
        build=_no_module,
        inputs=tuple(inputs),
        outputs=tuple(OutputSpec(o.name) for o in model.graph.output),
        export_dims={"batch": 1},
        default_dims={name: sizes[name] for name in needed},
        onnx_path=str(file),
        description=f"ONNX file, opset {_opset(model)}",
    )


def _opset(model) -> int | None:
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _no_module():
    raise BenchError("an ONNX file has no PyTorch module")


def shape_sizes(spec_text: str, path: str) -> dict[str, int]:
    """Sizes of the named dynamic dimensions of one input, from `--shape input=AxBxC`."""
    import onnx

    name, _, dims = spec_text.partition("=")
    try:
        values = [int(v) for v in dims.lower().split("x")]
    except ValueError:
        raise BenchError(f"--shape {spec_text!r}: expected INPUT=AxBx...") from None
    if any(not 1 <= v <= MAX_SIZE for v in values):
        raise BenchError(f"--shape {spec_text!r}: sizes must be 1 to {MAX_SIZE}")
    model = onnx.load(path, load_external_data=False)
    for value in model.graph.input:
        if value.name == name:
            dims_proto = value.type.tensor_type.shape.dim
            if len(dims_proto) != len(values):
                raise BenchError(
                    f"--shape {spec_text!r}: {name!r} has {len(dims_proto)} dimensions"
                )
            for axis, (d, size) in enumerate(zip(dims_proto, values, strict=True)):
                if d.dim_value and d.dim_value != size:
                    raise BenchError(f"--shape {spec_text!r}: axis {axis} of {name!r} is fixed "
                                     f"to {d.dim_value} in {path}")  # fmt: skip
            return {
                d.dim_param or f"{name}_dim{axis}": size
                for axis, (d, size) in enumerate(zip(dims_proto, values, strict=True))
                if axis > 0 and not d.dim_value
            }
    valid = ", ".join(v.name for v in model.graph.input)
    raise BenchError(f"--shape: {path} has no input {name!r}; valid: {valid}")
