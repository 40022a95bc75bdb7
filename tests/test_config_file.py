"""`bench run --config`: TOML and JSON files, every value checked, one-line errors.

Light on purpose: nothing here imports torch or a runtime, so CI also runs this file under
the oldest Python that pyproject allows (3.10, where TOML needs `tomli`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from bench import configfile
from bench.errors import BenchError

TOML = """
backends = ["ort-cpu", "openvino"]
opsets = [17, 18]
batch_sizes = 2
min-time = 0.5
min_iters = 20
warmup_iters = 3
no_baseline = true
exporter = "dynamo"
dims = ["seq=16,128"]
backend_option = "openvino.shapes=dynamic"

[tolerances.simple_cnn]
rtol = 0.01
atol = 0.001
"""

SETTINGS = {
    "backends": ["ort-cpu", "openvino"],
    "opsets": [17, 18],
    "batch_sizes": 2,
    "min-time": 0.5,
    "min_iters": 20,
    "warmup_iters": 3,
    "no_baseline": True,
    "exporter": "dynamo",
    "dims": ["seq=16,128"],
    "backend_option": "openvino.shapes=dynamic",
    "tolerances": {"simple_cnn": {"rtol": 0.01, "atol": 0.001}},
}


def _load(path, *flags: str):
    """Parse `bench run --config PATH FLAGS` the way the CLI does. Written for both layouts
    of the CLI: the parser built in bench.cli, or in bench.parser with the run subparser."""
    from bench.options import apply_config_file

    argv = ["run", "--config", str(path), *flags]
    try:
        from bench.parser import build_parser
    except ImportError:
        from bench.cli import build_parser

        return apply_config_file(str(path), build_parser(), argv)
    parser, run = build_parser()
    return apply_config_file(str(path), parser, run, argv)


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["bench.toml", "bench.json"])
def test_config_file_sets_typed_defaults_and_flags_win(name: str, tmp_path) -> None:
    text = TOML if name.endswith(".toml") else json.dumps(SETTINGS)
    args = _load(_write(tmp_path, name, text), "--opsets", "13", "--threads", "2")
    assert args.backends == "ort-cpu,openvino"
    assert args.opsets == "13"  # the flag wins over the file
    assert args.batch_sizes == "2"
    assert args.min_time == 0.5 and isinstance(args.min_time, float)
    assert args.min_iters == 20 and args.warmup_iters == 3
    assert args.no_baseline is True and args.exporter == "dynamo"
    assert args.dims == ["seq=16,128"]
    assert args.backend_option == ["openvino.shapes=dynamic"]
    assert args.threads == 2
    assert args.models == "simple_cnn"  # untouched: the parser's default
    assert args.config_tolerances == {"simple_cnn": {"rtol": 0.01, "atol": 0.001}}


def test_json_needs_no_toml_module(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tomllib", None)  # as on Python 3.10 ...
    monkeypatch.setitem(sys.modules, "tomli", None)  # ... without tomli
    args = _load(_write(tmp_path, "c.json", '{"backends": "ort-cpu", "threads": null}'))
    assert args.backends == "ort-cpu" and args.threads is None


def test_toml_on_python_310_without_tomli_says_what_to_install(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(configfile, "sys", SimpleNamespace(version_info=(3, 10, 13)))
    monkeypatch.setitem(sys.modules, "tomli", None)
    with pytest.raises(BenchError, match=r"needs the tomli package \(pip install tomli\)"):
        _load(_write(tmp_path, "c.toml", 'backends = "ort-cpu"'))


def test_toml_on_python_310_reads_with_tomli(tmp_path, monkeypatch) -> None:
    tomli = pytest.importorskip("tomli")
    monkeypatch.setattr(configfile, "sys", SimpleNamespace(version_info=(3, 10, 13)))
    monkeypatch.setitem(sys.modules, "tomllib", None)
    assert tomli.loads("a = 1") == {"a": 1}
    args = _load(_write(tmp_path, "c.toml", TOML))
    assert args.backends == "ort-cpu,openvino" and args.no_baseline is True


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("c.json", "[1, 2]", "must hold a JSON object of settings"),
        ("c.json", '"ort-cpu"', "must hold a JSON object of settings"),
        ("c.json", '{"backends": ', "does not parse"),
        ("c.toml", "backends = [ort-cpu", "does not parse"),
        ("c.json", '{"colour": "red"}', "unknown setting 'colour'; valid:"),
        ("c.json", '{"min_time": "fast"}', "min_time must be a number, got 'fast'"),
        ("c.json", '{"min_iters": 2.5}', "min_iters must be a whole number, got 2.5"),
        ("c.json", '{"threads": true}', "threads must be a whole number, got true"),
        ("c.json", '{"threads": 2.5}', "threads must be a whole number, got 2.5"),
        ("c.json", '{"trials": "3"}', "trials must be a whole number, got '3'"),
        ("c.json", '{"min_time": "0.5"}', "min_time must be a number, got '0.5'"),
        ("c.json", '{"min_time": NaN}', "min_time must be a finite number, got nan"),
        ("c.json", '{"cell_timeout": 1e999}', "cell_timeout must be a finite number, got inf"),
        ("c.toml", "max_time = inf", "max_time must be a finite number, got inf"),
        ("c.json", '{"no_baseline": "no"}', "no_baseline must be true or false, got 'no'"),
        ("c.json", '{"no_control": 1}', "no_control must be true or false, got 1"),
        ("c.json", '{"out": ["a", "b"]}', "out must be a folder name (a string), got a list"),
        ("c.json", '{"cache_dir": 5}', "cache_dir must be a folder name (a string), got 5"),
        (
            "c.toml",
            "[tolerances.m]\nrtol = nan",
            "tolerances.m.rtol must be a number >= 0, got nan",
        ),
        ("c.toml", 'exporter = "onnx"', "exporter must be one of auto, dynamo, torchscript"),
        ("c.toml", 'mode = ["latency"]', "mode must be one of latency, throughput, got a list"),
        ("c.toml", 'no_baseline = "yes"', "no_baseline must be true or false, got 'yes'"),
        ("c.toml", "backends = { a = 1 }", "backends must be a string, a number or a list"),
        ("c.toml", "opsets = [true]", "opsets must be a string, a number or a list"),
        ("c.toml", "backend_option = [[1]]", "backend_option must be a string or a list of"),
        ("c.json", '{"models": null}', "models must be set (leave it out for the default)"),
        ("c.toml", "tolerances = 5", "tolerances must be a table of [tolerances.MODEL] tables"),
        ("c.toml", "tolerances = { simple_cnn = 0.1 }", "tolerances.simple_cnn must be a table"),
        (
            "c.toml",
            '[tolerances.simple_cnn]\nrtol = "big"',
            "tolerances.simple_cnn.rtol must be a number >= 0, got 'big'",
        ),
        ("c.toml", "[tolerances.simple_cnn]\natol = -1", "atol must be a number >= 0, got -1"),
    ],
)
def test_bad_config_file_is_one_bench_error_line(name, text, message, tmp_path) -> None:
    with pytest.raises(BenchError) as info:
        _load(_write(tmp_path, name, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_setting_lists_the_valid_ones(tmp_path) -> None:
    with pytest.raises(BenchError) as info:
        _load(_write(tmp_path, "c.toml", "colour = 1"))
    valid = str(info.value).split("valid: ")[1].split(", ")
    assert {"backends", "min_time", "tolerances", "no_baseline"} <= set(valid)
    assert "config" not in valid and "resume" not in valid


def test_missing_config_file(tmp_path) -> None:
    with pytest.raises(BenchError, match="--config: no such file"):
        _load(tmp_path / "none.toml")
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(BenchError, match=r"--config: .*dir\.toml is not a file"):
        _load(tmp_path / "dir.toml")


def test_a_bad_value_in_the_file_is_refused_even_where_a_flag_overrides_it(tmp_path) -> None:
    path = _write(tmp_path, "c.json", '{"trials": -1, "min_time": 0.5}')
    with pytest.raises(BenchError, match=r"^--config .*c\.json: --trials must be >= 1, got -1"):
        _load(path, "--trials", "3")


@pytest.mark.parametrize(
    ("text", "message"),
    [("[1, 2]", "must hold a JSON object"), ('{"min_time": [1, 2]}', "min_time must be")],
)
def test_bad_json_config_on_the_command_line_is_one_line(text, message, bench_env, tmp_path):
    config = _write(tmp_path, "bad.json", text)
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--config", str(config)],
        capture_output=True, text=True, env=bench_env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_config_loading_imports_no_torch_or_runtime(tmp_path, bench_env) -> None:
    config = _write(tmp_path, "c.json", json.dumps(SETTINGS))
    code = (
        "import sys\n"
        "import bench.cli\n"
        "from test_config_file import _load\n"
        f"_load({str(config)!r})\n"
        "heavy = [m for m in ('torch', 'onnx', 'onnxruntime', 'openvino') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=bench_env, cwd=tmp_path, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
