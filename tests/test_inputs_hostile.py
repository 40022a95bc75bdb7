"""Hostile input: bad models, flags and config values fail early and clearly (exit 2, one
line, nothing run, no traceback), and the numbers count what ran.

Validation cases call the CLI's main() in this process (fast: nothing runs); cases that must
run cells use `python -m bench` with tiny timing settings and small models.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main

TINY = ["--trials", "1", "--warmup-iters", "1", "--warmup-time", "0", "--min-iters", "3",
        "--min-time", "0.01", "--max-time", "0.1", "--no-control"]  # fmt: skip

MODELS = """
import time
import torch
from torch import nn
from bench.models import InputSpec, ModelSpec, OutputSpec

X = [InputSpec("x", ("batch", 4))]


class Twice(nn.Module):
    def forward(self, x):
        return x * 2


class Table(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)

    def forward(self, ids):
        return self.embed(ids)


class Constant(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(4))

    def forward(self):
        return self.w * 2


class Dict(nn.Module):
    def forward(self, x):
        return {"double": x * 2, "pair": (x + 1, x - 1)}


class Nothing(nn.Module):
    def forward(self, x):
        return None


class Slow(nn.Module):
    def forward(self, x):
        time.sleep(30)
        return x * 2


def ids(*shape, **kw):
    return Table(), [InputSpec("ids", shape, **kw)]


def int_no_dtype(): return ids("batch", 8, generator="int", high=10)
def bad_dtype(): return ids("batch", 8, dtype="int46", generator="int", high=10)
def bad_generator(): return ids("batch", 8, dtype="int64", generator="integers", high=10)
def int_no_high(): return ids("batch", 8, dtype="int64", generator="int")
def int_too_wide(): return ids("batch", 8, dtype="uint8", generator="int", high=300)
def size_zero(): return ids("batch", 0, dtype="int64", generator="int", high=10)
def size_float(): return ids("batch", 2.5, dtype="int64", generator="int", high=10)
def normal_int(): return ids("batch", 8, dtype="int64")
def uniform_empty(): return Twice(), [InputSpec("x", ("batch", 4), generator="uniform", low=1, high=1)]
def range_on_normal(): return Twice(), [InputSpec("x", ("batch", 4), high=3)]
def no_default(): return ModelSpec("nd", Table, (InputSpec("ids", ("batch", "seq"), "int64", "int", high=10),), (OutputSpec("y"),))
def dup_inputs(): return ModelSpec("dup", Twice, (X[0], X[0]), (OutputSpec("y"),))
def none_tuple(): return Nothing(), X
def none_spec(): return ModelSpec("none_spec", Nothing, tuple(X), (OutputSpec("y"),))
def dict_tuple(): return Dict(), X
def dict_spec(): return ModelSpec("dict_spec", Dict, tuple(X), (OutputSpec("d"), OutputSpec("p0"), OutputSpec("p1")))
def constant(): return ModelSpec("constant", Constant, (), (OutputSpec("y"),))
def slow(): return ModelSpec("slow", Slow, tuple(X), (OutputSpec("y"),))
def evil(): return ModelSpec("evil\\n# Injected heading", Twice, tuple(X), (OutputSpec("y"),))
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hostile.py (the models above) and small ONNX files, in one folder."""
    import onnx
    from onnx import TensorProto, helper

    folder = tmp_path_factory.mktemp("hostile")
    (folder / "hostile.py").write_text(MODELS)

    def save(name: str, node, inputs, outputs, init=()) -> None:
        graph = helper.make_graph([node], "g", inputs, outputs, list(init))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.save(model, str(folder / name))

    info = helper.make_tensor_value_info
    save("fixed.onnx", helper.make_node("Relu", ["x"], ["y"]),
         [info("x", TensorProto.FLOAT, [1, 64])], [info("y", TensorProto.FLOAT, [1, 64])])  # fmt: skip
    table = helper.make_tensor("table", TensorProto.FLOAT, [5, 4], [0.5] * 20)
    save("table.onnx", helper.make_node("Gather", ["table", "ids"], ["y"]),
         [info("ids", TensorProto.INT64, ["batch", 8])],
         [info("y", TensorProto.FLOAT, ["batch", 8, 4])], [table])  # fmt: skip
    save("det.onnx", helper.make_node("Det", ["x"], ["y"]),
         [info("x", TensorProto.FLOAT, ["batch", 3, 3])], [info("y", TensorProto.FLOAT, ["batch"])])  # fmt: skip
    return folder


def cli(capsys, *args: str) -> tuple[int, str]:
    """main() in this process: (exit status, stderr)."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def bench(files: Path, env: dict[str, str], *args: str, timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True,
                          text=True, env=env, cwd=files, timeout=timeout)  # fmt: skip


def _cells(out: Path) -> dict[str, dict]:
    records = map(json.loads, (out / "results.jsonl").read_text().splitlines())
    return {r["cell_id"]: r for r in records if r["kind"] == "cell"}


def _one_line_exit_2(code: int, err: str, message: str, folder: Path) -> None:
    assert code == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (folder / "results").exists()  # nothing started


# -- 2. models checked when they load ------------------------------------------------------

MODEL_CASES = [
    ("int_no_dtype", "input 'ids': generator 'int' needs an integer dtype (int64, int32, "
     "uint8, ...), got dtype float32 (dtype defaults to float32: give dtype='int64')"),
    ("bad_dtype", "input 'ids': dtype 'int46' is not a numpy dtype; use e.g. float32"),
    ("bad_generator", "input 'ids': unknown generator 'integers'; valid: normal, uniform, int"),
    ("int_no_high", "input 'ids': generator 'int' needs high= (values are drawn from low"),
    ("int_too_wide", "input 'ids': int range [0, 300) must hold at least one value and fit uint8 (0 to 255)"),
    ("size_zero", "input 'ids': axis 1 is 0: sizes are 1 to 65536"),
    ("size_float", "input 'ids': axis 1 is 2.5: sizes are whole numbers from 1 to 65536"),
    ("normal_int", "input 'ids': generator 'normal' needs a float dtype (float32, float16, float64), got "
     "dtype int64"),
    ("uniform_empty", "input 'x': uniform needs low < high, got 1 and 1"),
    ("range_on_normal", "input 'x': generator 'normal' takes no low/high"),
    ("no_default", "dimension 'seq' (input 'ids') has no default size: add "
     "default_dims={'seq': SIZE} to the ModelSpec"),
    ("dup_inputs", "input names must be unique; repeated: x"),
    ("none_tuple", "forward() returned None: return a tensor, a tuple or list of tensors, or a "
     "dict of them"),
]  # fmt: skip


@pytest.mark.parametrize(("function", "message"), MODEL_CASES)
def test_bad_model_is_one_line_naming_it(function, message, files, capsys, monkeypatch) -> None:
    monkeypatch.chdir(files)
    code, err = cli(capsys, "run", "--models", f"hostile.py:{function}", "--backends", "ort-cpu")
    _one_line_exit_2(code, err, f"hostile.py:{function}: {message}", files)


ONNX_CASES = [
    (["--models", "fixed.onnx", "--batch-sizes", "4,8"], "fixed.onnx: inputs x[1,64] have no "
     "batch axis: every inference is 1 item, so only batch size 1 measures what ran; add 1 to "
     "--batch-sizes (given: 4, 8)"),
    (["--models", "hostile.py:constant", "--batch-sizes", "8"], "it has no inputs: every "
     "inference is 1 item"),
    (["--models", "table.onnx", "--int-range", "idz=0:5"], "--int-range: no model in this run "
     "has an integer input 'idz'; valid: ids"),
    (["--models", "table.onnx", "--int-range", "ids=5:2"], "LOW must be below HIGH"),
    (["--models", "table.onnx", "--int-range", "ids=0-5"], "expected INPUT=LOW:HIGH"),
    (["--models", "table.onnx", "--int-range", "ids=-1:99999999999999999999"], "fit int64"),
    (["--models", "table.onnx", "--shape", "ids=1x0"], "--shape 'ids=1x0': sizes must be 1 to"),
    (["--models", "table.onnx", "--shape", "ids=1x9"], "axis 1 of 'ids' is fixed to 8"),
    (["--models", "hostile.py:dict_tuple", "--dims", "seq=0"], "no model in this run has a "
     "dimension 'seq'"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), ONNX_CASES)
def test_bad_sizes_and_ranges_are_one_line(args, message, files, capsys, monkeypatch) -> None:
    monkeypatch.chdir(files)
    code, err = cli(capsys, "run", "--backends", "ort-cpu", *args)
    _one_line_exit_2(code, err, message, files)


# -- 3. every flag and config value checked up front -----------------------------------------

FLAG_CASES = [
    (["--rtol", "nan"], "--rtol 'nan': must be a finite number, got nan; valid: a finite number >= 0"),
    (["--atol", "inf"], "--atol 'inf': must be a finite number, got inf"),
    (["--rtol", "simple_cnn=nan"], "--rtol 'simple_cnn=nan': must be a finite number, got nan"),
    (["--seed", "-1"], "--seed must be >= 0, got -1; valid: 0 to 4294967295"),
    (["--seed", "99999999999999999999"], "--seed must be <= 4294967295"),
    (["--parity-seeds", "0,-1"], "--parity-seeds must be >= 0, got -1; valid: 0 to"),
    (["--threads", "100000"], "--threads must be <= "),
    (["--requests", "100000"], "--requests must be <= 256, got 100000; valid: 1 to 256"),
    (["--trials", "100000000"], "--trials must be <= 1000, got 100000000; valid: 1 to 1000"),
    (["--min-iters", "0"], "--min-iters must be >= 1, got 0"),
    (["--warmup-iters", "-3"], "--warmup-iters must be >= 0, got -3"),
    (["--max-time", "nan"], "--max-time must be a finite number, got nan"),
    (["--cell-timeout", "inf"], "--cell-timeout must be a finite number, got inf; valid: above 0 to 604800"),
    (["--warmup-time", "5", "--max-time", "1"], "--max-time 1 is below --warmup-time 5"),
    (["--cache-dir", "/proc/nope/cache"], "--cache-dir: cannot write to /proc/nope/cache"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), FLAG_CASES)
def test_bad_flag_is_one_line_naming_the_range(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = cli(capsys, "run", "--backends", "ort-cpu", *args)
    _one_line_exit_2(code, err, message, tmp_path)


CONFIG_CASES = [
    ('{"threads": 2.5}', "--config: threads must be a whole number, got 2.5"),
    ('{"no_baseline": "no"}', "--config: no_baseline must be true or false, got 'no'"),
    ('{"no_control": 0}', "--config: no_control must be true or false, got 0"),
    ('{"trials": "3"}', "--config: trials must be a whole number, got '3'"),
    ('{"min_time": NaN}', "--config: min_time must be a finite number, got nan"),
    ('{"seed": -5}', "--seed must be >= 0, got -5"),
    ('{"rtol": ["NaN"]}', "--rtol 'NaN': must be a finite number, got nan"),
    ('{"tolerances": {"simple_cnn": {"atol": Infinity}}}', "atol must be a number >= 0"),
    ('{"out": ["a", "b"]}', "--config: out must be a folder name (a string), got a list"),
    ('{"threads": 100000}', "--threads must be <= "),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), CONFIG_CASES)
def test_bad_config_value_is_one_line(text, message, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.json").write_text(text)
    code, err = cli(capsys, "run", "--config", "c.json")
    _one_line_exit_2(code, err, message, tmp_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-time", "nan"], "--min-time must be a finite number, got nan"),
        (["--seed", "-1"], "--seed must be >= 0, got -1"),
        (["--trials", "1"], "--trials must be >= 2, got 1; valid: 2 to 1000"),
        (["--batch-sizes", "0"], "--batch-sizes must be >= 1, got 0"),
        (["--models", "nope"], "unknown model 'nope'"),
    ],
)
def test_bad_noise_flag_is_one_line(args, message, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = cli(capsys, "noise", *args)
    _one_line_exit_2(code, err, message, tmp_path)


# -- runs: what runs is what is counted ------------------------------------------------------


def test_fixed_batch_and_input_less_models_run_at_their_batch_only(files, bench_env) -> None:
    out = files / "batch-run"
    proc = bench(files, bench_env, "run", "--models", "fixed.onnx,hostile.py:constant",
                 "--backends", "ort-cpu", "--opsets", "18", "--batch-sizes", "1,4",
                 "--out", str(out), *TINY)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout[-2000:]
    cells = _cells(out)
    for cell_id, record in cells.items():
        if "/b4/" in cell_id:
            assert record["status"] == "skipped", cell_id
            assert "only batch size 1 measures what ran" in record["reason"]
        else:
            assert record["status"] == "ok", (cell_id, record.get("reason"))
            timed = record["latency"]["inference"]
            assert timed["throughput_items_per_s"] == pytest.approx(1e6 / timed["center_us"])
    assert "fixed: inputs x[1,64] have no batch axis" in (out / "report.md").read_text()


def test_dict_and_nested_outputs_are_flattened_with_names(files, bench_env) -> None:
    out = files / "dict-run"
    models = "hostile.py:dict_tuple,hostile.py:dict_spec,hostile.py:evil"
    proc = bench(files, bench_env, "run", "--models", models,
                 "--backends", "ort-cpu", "--opsets", "18", "--batch-sizes", "2",
                 "--out", str(out), *TINY)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout[-2000:]
    names = {cell_id: [o["name"] for o in r["parity"]["outputs"]]
             for cell_id, r in _cells(out).items()}  # fmt: skip
    assert names["hostile:dict_tuple/ort-cpu/auto-op18/b2/fp32"] == ["double", "pair.0", "pair.1"]
    assert names["dict_spec/torch/eager/b2/fp32"] == ["d", "p0", "p1"]
    # a model name holding a newline and '#' injects no heading into report.md
    report = (out / "report.md").read_text()
    assert "evil # Injected heading" in report
    assert not [line for line in report.splitlines() if line.startswith("# Injected")]


def test_unnameable_output_and_slow_forward_fail_their_cells_fast(files, bench_env) -> None:
    out = files / "slow-run"
    proc = bench(files, bench_env, "run", "--models", "hostile.py:none_spec,hostile.py:slow",
                 "--backends", "ort-cpu", "--opsets", "18", "--batch-sizes", "1,2",
                 "--cell-timeout", "3", "--out", str(out), *TINY, timeout=120)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    cells = _cells(out)
    for cell_id, record in cells.items():
        if cell_id.startswith("slow/"):  # 30 s forward, 3 s timeout: no export, no minutes
            assert record["status"] == "timeout" and record.get("export") is None, cell_id
            assert (
                "PyTorch reference at {'batch': 1}: worker gave no result within 3s"
                in (record["reason"])
            )
        else:
            assert record["status"] == "failed"
            assert (
                "hostile.py:none_spec: forward() returned None: return a tensor"
                in (record["reason"])
            )
    assert len(cells) == 8


def test_int_range_lets_ids_index_a_small_table(files, bench_env) -> None:
    out = files / "table-run"
    proc = bench(files, bench_env, "run", "--models", "table.onnx", "--backends", "ort-cpu",
                 "--batch-sizes", "2", "--int-range", "ids=0:5", "--out", str(out), *TINY)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout[-2000:]
    assert [r["status"] for r in _cells(out).values()] == ["ok"]


def test_openvino_error_keeps_its_meaningful_line_everywhere(files, bench_env) -> None:
    out = files / "det-run"
    proc = bench(files, bench_env, "run", "--models", "det.onnx", "--backends", "openvino",
                 "--batch-sizes", "1", "--out", str(out), *TINY)  # fmt: skip
    record = next(iter(_cells(out).values()))
    if record["status"] == "ok":
        pytest.skip("this OpenVINO converts Det")
    line = "No conversion rule found for operations: Det-17"
    assert line in record["reason"]
    assert f"failed: RuntimeError: Model wasn't fully converted. {line}" in proc.stdout
    assert line in (out / "report.md").read_text()
    assert line in (out / "report.html").read_text()


# -- 5. time bounds -------------------------------------------------------------------------


def test_max_time_wins_over_min_iters_and_warmup(monkeypatch) -> None:
    """A 50 ms call with --min-iters 1000 and --warmup-iters 1000 under --max-time 0.2:
    the warm-up and the timed loop each stop after 0.2 s (on a simulated clock)."""
    import time

    from bench.timing import TimingPolicy, measure

    now = [0]
    monkeypatch.setattr(time, "perf_counter_ns", lambda: now[0])

    def call() -> None:
        now[0] += 50_000_000

    policy = TimingPolicy(trials=1, warmup_iters=1000, warmup_time=0.0, min_iters=1000,
                          min_time=0.0, max_time=0.2)  # fmt: skip
    measured = measure(call, policy)
    assert measured.warmup_iters == 4 and len(measured.samples_ns) == 4
    assert measured.wall_s == pytest.approx(0.2)
