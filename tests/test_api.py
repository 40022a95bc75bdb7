"""The Python API: `import bench` stays light; bench.run/load/compare return DataFrames and
raise bench.BenchError (never SystemExit) with the command line's own line."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import bench
from bench.cli import main

DATA = Path(__file__).resolve().parent / "data"
FAST = dict(trials=2, warmup_iters=2, warmup_time=0, min_iters=5, min_time=0.02, max_time=0.2)


def test_import_bench_loads_no_runtime_and_no_pandas(bench_env: dict) -> None:
    code = ("import sys, bench; heavy = ('torch', 'onnxruntime', 'openvino', 'pandas', 'plotly',"
            " 'bench.api'); print([m for m in heavy if m in sys.modules]); "
            "print(callable(bench.run), bench.BenchError.__name__)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], env=bench_env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "True BenchError"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = bench.nope  # type: ignore[attr-defined]
    assert {"run", "load", "compare", "RunResult", "BenchError"} <= set(dir(bench))


@pytest.mark.parametrize(
    ("settings", "line", "flags"),
    [
        ({"modelz": "simple_cnn"}, "bench.run: unknown setting 'modelz'; valid: allocator, allow_failures",
         None),
        ({"trials": "many"}, "argument --trials: invalid int value: 'many' (see 'bench run "
         "--help')", ["--trials", "many"]),
        ({"backends": ["ort-cpu", "nope"]}, "unknown backend 'nope'; valid: ort-cpu",
         ["--backends", "ort-cpu,nope"]),
        ({"models": "nope"}, "unknown model 'nope'", ["--models", "nope"]),
        ({"no_baseline": "yes"}, "bench.run: no_baseline takes True or False, not 'yes'", None),
        ({"trials": True}, "bench.run: trials takes a value, not True", None),
        ({"trials": 0}, "--trials", ["--trials", "0"]),
        ({"exporter": "onnx"}, "argument --exporter: invalid choice: 'onnx'",
         ["--exporter", "onnx"]),
        ({"batch_sizes": [1, -4]}, "--batch-sizes", ["--batch-sizes", "1,-4"]),
        ({"retry_failed": True}, "--retry-failed goes with --resume RUN_DIR", ["--retry-failed"]),
    ],
)  # fmt: skip
def test_run_refuses_bad_settings_with_the_command_lines_line(
    settings: dict, line: str, flags: list[str] | None, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "run"
    with pytest.raises(bench.BenchError) as raised:
        bench.run(out=str(out), **settings)
    message = str(raised.value)
    assert line in message and "\n" not in message
    assert not out.exists(), "nothing is made for a refused setting"
    if flags is None:  # a mistake only Python can make
        return
    try:  # the command line prints the same line after "bench: error: "
        status = main(["run", *flags, "--out", str(out)])
    except SystemExit as exc:  # argparse's own errors
        status = int(exc.code or 0)
    assert status == 2
    assert capsys.readouterr().err.strip() == f"bench: error: {message}"


def test_load_gives_the_cells_with_their_ids() -> None:
    frame = bench.load(DATA / "v3_default_threads")
    assert len(frame) == 6  # the control workload is not a cell
    assert set(frame["run_id"]) == {"v3_default_threads"}
    assert "simple_cnn/ort-cpu/auto-op17/b1/fp32" in set(frame["cell_id"])
    assert {"center_us", "status", "parity_passed", "backend", "batch_size"} <= set(frame.columns)
    assert frame.attrs["env"]["host"] == "vm"
    old = bench.load(str(DATA / "run_schema_v1"))
    assert len(old) == 6 and old["center_us"].notna().all()


def test_load_warns_about_damaged_lines_and_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(DATA / "run_one_thread", copy)
    with (copy / "results.jsonl").open("a") as fh:
        fh.write("[1, 2]\n")
    with pytest.warns(UserWarning) as caught:
        frame = bench.load(copy)
    said = [str(w.message) for w in caught]
    assert any("results.jsonl:7: a JSON list" in m for m in said)
    assert any("1 unreadable record" in m for m in said)
    assert len(frame) == 6
    with pytest.raises(bench.BenchError, match="is not a run folder"):
        bench.load(tmp_path / "nope")
    record = json.loads((copy / "results.jsonl").read_text().splitlines()[0])
    (copy / "results.jsonl").write_text(json.dumps({**record, "schema_version": 99}) + "\n")
    with pytest.raises(bench.BenchError, match="schema_version 99"):
        bench.load(copy)


def test_compare_returns_one_row_per_joined_cell() -> None:
    frame = bench.compare(DATA / "run_default_threads", DATA / "run_one_thread")
    assert len(frame) == 6
    assert set(frame["baseline"]) == {"run_default_threads"} and set(frame["other"]) == {
        "run_one_thread"
    }
    assert set(frame["verdict"]) <= {"faster", "slower", "unchanged", "cannot resolve"}
    assert frame["ratio"].between(0.1, 10).all()
    assert "config.threads" in {f for f, _, _ in frame.attrs["env_differences"]["run_one_thread"]}
    with pytest.raises(bench.BenchError, match="at least two different run folders"):
        bench.compare(DATA / "run_one_thread", DATA / "run_one_thread")
    with pytest.raises(bench.BenchError, match="valid: auto, control, none"):
        bench.compare(DATA / "run_default_threads", DATA / "run_one_thread", normalize="x")
    with pytest.raises(bench.BenchError, match="--normalize control"):
        bench.compare(DATA / "run_default_threads", DATA / "run_one_thread", normalize="control")


@pytest.mark.parametrize("value", [None, 3, True, b"results/x", ["a", "b"]])
def test_load_of_something_not_a_folder_path_is_one_bench_error(value: object) -> None:
    """`bench.load(None)` once raised TypeError."""
    with pytest.raises(bench.BenchError, match=r"^bench.load: a run folder path") as caught:
        bench.load(value)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


def test_compare_takes_a_list_of_folders_and_a_baseline() -> None:
    a, b = DATA / "run_default_threads", DATA / "run_one_thread"
    listed = bench.compare([a, b])
    assert len(listed) == 6 and set(listed["baseline"]) == {a.name}
    swapped = bench.compare((str(a), f"{b}/"), baseline=b)  # the same folder spelt otherwise
    assert set(swapped["baseline"]) == {b.name} and set(swapped["other"]) == {a.name}
    assert bench.compare(a, b, baseline=a).equals(bench.compare(a, b))
    with pytest.raises(bench.BenchError, match=r"at least two different run folders.*as one list"):
        bench.compare([a])
    with pytest.raises(bench.BenchError, match=r"a run folder path .* not NoneType"):
        bench.compare([a, None])  # type: ignore[list-item]
    # A baseline beside the folders is compared with each of them, as --baseline does.
    third = bench.compare(a, b, baseline=DATA / "v3_default_threads")
    assert set(third["baseline"]) == {"v3_default_threads"}
    assert set(third["other"]) == {a.name, b.name}
    with pytest.raises(bench.BenchError, match=r"baseline: a run folder path"):
        bench.compare(a, b, baseline=3)  # type: ignore[arg-type]


@pytest.mark.slow
def test_two_new_runs_join_tests_data_in_the_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Done when: the history holds the runs in tests/data plus two new ones (made through
    bench.run) and charts one metric across them; adding again changes nothing."""
    grid = dict(models="simple_cnn", backends=["ort-cpu"], opsets=[17], batch_sizes=[1],
                no_baseline=True, no_end_to_end=True, no_control=True, **FAST)  # fmt: skip
    made = []
    for name in ("new1", "new2"):
        result = bench.run(out=str(tmp_path / name), **grid)
        assert result.exit_status == 0 and result.run_dir == tmp_path / name
        assert list(result.records["cell_id"]) == ["simple_cnn/ort-cpu/auto-op17/b1/fp32"]
        assert result.records["status"].tolist() == ["ok"] and result.records["parity_passed"].all()
        made.append(result.run_dir)
    capsys.readouterr()
    db = tmp_path / "history.sqlite"
    runs = [*sorted(p for p in DATA.iterdir() if p.is_dir()), *made]
    assert main(["history", "add", *map(str, runs), "--db", str(db)]) == 0
    assert main(["history", "add", *map(str, runs), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.count("nothing changed") == 6
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone() == (6,)
    chart = tmp_path / "chart.html"
    assert main(["history", "show", "--model", "simple_cnn", "--backend", "ort-cpu",
                 "--batch-size", "1", "--db", str(db), "--out", str(chart)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "across 6 runs" in out
    for run_id in ("data_a", "data_b", "data_v1", "v3_default_threads", "new1", "new2"):
        assert run_id in out and run_id in chart.read_text()
    # the second new run is judged against the first on the trial level
    new2 = next(line for line in out.splitlines() if line.startswith("new2"))
    assert "latency " in new2


def test_bench_compare_stays_the_api_function_after_the_module_is_imported() -> None:
    from bench.comparison import Run
    from bench.comparison import compare as compare_runs

    assert callable(bench.compare) and bench.compare.__module__ == "bench.api"
    assert compare_runs.__module__ == "bench.comparison" and Run.__module__ == "bench.comparison"
    assert sys.modules["bench.comparison"].compare is compare_runs
