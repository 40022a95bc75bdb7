"""Shards and merge: `bench run --shard I/N`, `bench merge`, and the scheduler recipes under
scripts/shards/ (GitHub Actions, Slurm, Kubernetes) run as local processes. A 24-cell sweep run
as 3 shards and merged has exactly the cells, statuses and parity verdicts of the sweep run
whole; timings are never compared."""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import FAST_TIMING, ROOT

from bench.cli import main
from bench.errors import BenchError
from bench.grid import Cell
from bench.lock import RunLock
from bench.report.machines import machine_groups
from bench.results import read_records
from bench.shard import assign, cell_cost, parse_shard, sweep_id
from bench.timing import TimingPolicy

pytestmark = pytest.mark.slow
RECIPES = ROOT / "scripts" / "shards"
#: 2 models x 2 backends x 2 opsets x 3 batch sizes = 24 measured cells, kept short.
SWEEP = shlex.join(["--models", "simple_cnn,mlp", "--backends", "ort-cpu,openvino",
                    "--no-baseline", "--opsets", "17,18", "--batch-sizes", "1,2,4",
                    "--no-control", "--no-end-to-end", "--parity-seeds", "0", *FAST_TIMING])  # fmt: skip
CELLS = 24


def _env(**extra: str) -> dict[str, str]:
    """The recipes call `bench`: this interpreter's, from this checkout."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    env["BENCH_SWEEP"] = SWEEP
    return {**env, **extra}


def _run_jobs(jobs: list[tuple[list[str], dict[str, str], Path]], logs: Path, cap: int = 6) -> None:
    """Run every job (argv, env, cwd) as a local process, at most `cap` at once; all must pass."""
    logs.mkdir(parents=True, exist_ok=True)
    pending, running = list(enumerate(jobs)), []
    while pending or running:
        while pending and len(running) < cap:
            number, (argv, env, cwd) = pending.pop(0)
            log = logs / f"job-{number}.log"
            with log.open("w") as sink:
                running.append((subprocess.Popen(argv, env=env, cwd=cwd, stdout=sink,
                                                 stderr=subprocess.STDOUT), log))  # fmt: skip
        proc, log = running.pop(0)
        assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]


def _verdicts(run_dir: Path) -> dict[str, tuple]:
    """Each cell's status and parity verdicts; every cell recorded once."""
    text = (run_dir / "results.jsonl").read_text()
    whole = text if text.endswith("\n") or not text else text[: text.rfind("\n") + 1]
    cells = [json.loads(line) for line in whole.splitlines()]  # a torn last line left out
    cells = [r for r in cells if r.get("kind", "cell") == "cell"]
    ids = [r["cell_id"] for r in cells]
    assert len(ids) == len(set(ids)), "a cell recorded twice"
    return {r["cell_id"]: (r["status"], (r.get("parity") or {}).get("passed"),
                           ((r.get("parity") or {}).get("verdicts") or {}).get("deciding"))
            for r in cells}  # fmt: skip


def _workflow() -> dict:
    return yaml.safe_load((RECIPES / "github-actions.yml").read_text())


def _indexed_jobs() -> list[dict]:
    return list(yaml.safe_load_all((RECIPES / "k8s-indexed-job.yaml").read_text()))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sweep run whole, and as the shards each recipe would start (the Slurm array's
    tasks, the GitHub Actions matrix's jobs, the Indexed Job's pods), all as local processes."""
    root = tmp_path_factory.mktemp("sweep")
    jobs = [([sys.executable, "-m", "bench", "run", *shlex.split(SWEEP), "--out",
              str(root / "whole")], _env(), root)]  # fmt: skip
    for task in (1, 2, 3):
        env = _env(SLURM_ARRAY_TASK_ID=str(task), SLURM_ARRAY_TASK_COUNT="3",
                   RESULTS=str(root / "slurm"))  # fmt: skip
        jobs.append((["bash", str(RECIPES / "slurm-array.sh")], env, root))
    workflow = _workflow()
    step = next(s for s in workflow["jobs"]["shard"]["steps"] if "--shard" in s.get("run", ""))
    (root / "gha").mkdir()
    env = _env(SHARDS=workflow["env"]["SHARDS"], RESULTS="results")
    for i in workflow["jobs"]["shard"]["strategy"]["matrix"]["shard"]:
        command = step["run"].replace("${{ matrix.shard }}", str(i))
        jobs.append((["bash", "-c", command], env, root / "gha"))
    spec = _indexed_jobs()[0]["spec"]
    container = spec["template"]["spec"]["containers"][0]
    env = _env(**{e["name"]: e["value"] for e in container["env"]})
    env.update(BENCH_SWEEP=SWEEP, RESULTS=str(root / "k8s"))
    for index in range(spec["completions"]):
        jobs.append((["bash", "-c", container["args"][0]],
                     {**env, "JOB_COMPLETION_INDEX": str(index)}, root))  # fmt: skip
    _run_jobs(jobs, root / "logs")
    return {"whole": root / "whole", "slurm": root / "slurm", "gha": root / "gha",
            "k8s": root / "k8s"}  # fmt: skip


# -- the shard assignment ------------------------------------------------------------------


@pytest.mark.parametrize("joined", [True, False])
@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "-1/2", "-1", "-x", "1/2/3"])
def test_bad_shard_is_one_line_exit_2(text: str, joined: bool, capsys, tmp_path) -> None:
    """`--shard -1/2` (two tokens) once got argparse's "expected one argument"."""
    out = tmp_path / "never"
    shard = [f"--shard={text}"] if joined else ["--shard", text]
    assert main(["run", "--backends", "ort-cpu", *shard, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench: error: --shard") and "\n" not in err
    assert "I/N" in err or "from 1 to N" in err or "N runs from 1 to" in err
    assert not out.exists()


def test_a_negative_shard_through_the_api_and_a_process_is_the_same_line(tmp_path) -> None:
    import bench

    with pytest.raises(BenchError, match=r"^--shard '-1/2': give I/N"):
        bench.run(shard="-1/2", out=str(tmp_path / "never"))
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--shard", "-1/2"],
                          capture_output=True, text=True, env=_env())  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert (
        proc.stderr == "bench: error: --shard '-1/2': give I/N, the shard's number and the "
        "number of shards, e.g. --shard 2/3\n"
    )
    assert not (tmp_path / "never").exists()


def test_parse_shard() -> None:
    assert parse_shard("2/3") == (2, 3) and parse_shard(" 1/1 ") == (1, 1)
    assert parse_shard("10000/10000") == (10000, 10000)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "give I/N"),
        ("1/100000000", "from 1 to 10000"),
        ("1/99999999999999999999", "from 1 to 10000"),
        ("1/0", "from 1 to 10000"),
        ("\u0661/\u0662", "give I/N"),  # Arabic-Indic digits are digits, not ASCII ones
        ("4/3", "here 1 to 3"),
    ],
)
def test_hostile_shards_are_one_line(text: str, says: str) -> None:
    """A huge N once took 14 GB before measuring anything; an empty value ran the whole grid."""
    with pytest.raises(BenchError, match=says):
        parse_shard(text)


def _fake_cells(n: int) -> list[Cell]:
    return [Cell(f"m{i % 3}", f"b{i % 2}", 1 + i, "fp32", "auto", 18) for i in range(n)]


def test_assignment_covers_each_cell_once_balanced_and_independent_of_order() -> None:
    rng = random.Random(1)
    cells = _fake_cells(41)
    costs = {c.cell_id: rng.randint(1, 1000) for c in cells}

    def cost(cell: Cell) -> int:
        return costs[cell.cell_id]

    parts = assign(cells, cost, 4)
    ids = [c.cell_id for part in parts for c in part]
    assert sorted(ids) == sorted(costs) and len(ids) == len(set(ids))
    loads = [sum(costs[c.cell_id] for c in part) for part in parts]
    assert max(loads) <= sum(loads) / 4 + max(costs.values())  # the LPT bound
    shuffled = cells[:]
    rng.shuffle(shuffled)
    again = assign(shuffled, cost, 4)
    assert [{c.cell_id for c in p} for p in again] == [{c.cell_id for c in p} for p in parts]
    assert [len(p) for p in assign(cells[:2], cost, 5)].count(0) == 3


def test_cost_grows_with_batch_and_skipped_cells_cost_little() -> None:
    timing = TimingPolicy(trials=2, min_iters=10, min_time=0.001, warmup_time=0)
    small, large = (cell_cost(n, "onnx", timing, True) for n in (3_000, 3_000_000))
    assert large > small > 1 and cell_cost(3_000_000, "onnx", timing, True, runs=False) == 1
    assert cell_cost(3_000_000, "torch", timing, False) > cell_cost(
        3_000_000, "onnx", timing, False
    )


def test_sweep_id_ignores_only_local_keys() -> None:
    config = {"models": ["a"], "seed": 0, "shard": [1, 3], "out_dir": "x", "cache_dir": "/c"}
    same = {**config, "shard": [3, 3], "out_dir": "y", "cache_dir": "/d"}
    assert sweep_id(config) == sweep_id(same) != sweep_id({**config, "seed": 1})


def test_shards_are_the_same_under_any_hash_seed(tmp_path) -> None:
    code = ("from bench.config import RunConfig; from bench.runner import Runner; from pathlib "
            "import Path; c = RunConfig(models=('simple_cnn', 'mlp'), backends=('ort-cpu', "
            "'openvino', 'torch'), batch_sizes=(1, 4, 32), shard=(2, 3)); "
            "print([x.cell_id for x in Runner(c, Path('.'), 'r').cells()])")  # fmt: skip
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=_env(PYTHONHASHSEED=seed), cwd=tmp_path, check=True).stdout
            for seed in ("1", "2")}  # fmt: skip
    assert len(outs) == 1 and "simple_cnn" in outs.pop()


# -- the recipes, run as local processes ---------------------------------------------------


def test_slurm_recipe_merges_into_the_whole_run(sweep) -> None:
    for script in ("slurm-array.sh", "slurm-merge.sh"):
        subprocess.run(["bash", "-n", str(RECIPES / script)], check=True)
        assert "bench " in (RECIPES / script).read_text()
    assert "#SBATCH --array=1-3" in (RECIPES / "slurm-array.sh").read_text()
    proc = subprocess.run(["bash", str(RECIPES / "slurm-merge.sh")], capture_output=True,
                          text=True, env=_env(RESULTS=str(sweep["slurm"])))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    merged = sweep["slurm"] / "merged"
    expected = _verdicts(sweep["whole"])
    assert len(expected) == CELLS and _verdicts(merged) == expected
    assert {"report.md", "report.html", "summary.csv"} <= {p.name for p in merged.iterdir()}
    run = json.loads((merged / "run.json").read_text())
    assert run["config"]["shard"] is None and run["sweep"]["shards"] == 3
    for shard in (1, 2, 3):  # each record keeps the host its shard's env.json names
        host = json.loads((sweep["slurm"] / f"shard-{shard}" / "env.json").read_text())["host"]
        assert all(r["host"] == host for r in read_records(sweep["slurm"] / f"shard-{shard}"))
    assert all(r["host"] and r["schema_version"] == 5 for r in read_records(merged))


def test_github_actions_recipe_merges_into_the_whole_run(sweep, tmp_path) -> None:
    workflow = _workflow()
    shards = workflow["jobs"]["shard"]["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, int(workflow["env"]["SHARDS"]) + 1))
    assert workflow["jobs"]["merge"]["needs"] == "shard"
    for i in shards:  # what actions/download-artifact lays out: shards/<artifact name>/
        shutil.copytree(sweep["gha"] / "results" / f"shard-{i}", tmp_path / "shards" / f"shard-{i}")
    steps = workflow["jobs"]["merge"]["steps"]
    merge = next(s["run"] for s in steps if "bench merge" in s.get("run", ""))
    env = _env(RESULTS="results")
    subprocess.run(["bash", "-c", merge], env=env, cwd=tmp_path, check=True, capture_output=True)
    assert _verdicts(tmp_path / "results" / "merged") == _verdicts(sweep["whole"])


def test_kubernetes_recipe_merges_into_the_whole_run(sweep) -> None:
    shards_job, merge_job = _indexed_jobs()
    spec = shards_job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"]
    container = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert int(env["SHARDS"]) == spec["completions"] and container["command"] == ["bash", "-c"]
    assert "JOB_COMPLETION_INDEX + 1" in container["args"][0]
    assert sorted(p.name for p in sweep["k8s"].iterdir()) == ["shard-1", "shard-2", "shard-3"]
    merge = merge_job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    subprocess.run(["bash", "-c", merge], env=_env(RESULTS=str(sweep["k8s"])), check=True,
                   capture_output=True)  # fmt: skip
    assert _verdicts(sweep["k8s"] / "merged") == _verdicts(sweep["whole"])


def test_a_shard_killed_mid_run_resumes_and_merges_with_nothing_lost_or_doubled(
    sweep, tmp_path
) -> None:
    for shard in (1, 3):
        shutil.copytree(sweep["slurm"] / f"shard-{shard}", tmp_path / f"shard-{shard}")
    env = _env(SLURM_ARRAY_TASK_ID="2", SLURM_ARRAY_TASK_COUNT="3", RESULTS=str(tmp_path))
    script = ["bash", str(RECIPES / "slurm-array.sh")]
    proc = subprocess.Popen(script, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    results = tmp_path / "shard-2" / "results.jsonl"
    deadline = time.monotonic() + 300
    while not (results.exists() and results.read_text().count("\n") >= 1):
        assert proc.poll() is None and time.monotonic() < deadline, "no cell finished"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the bash script, bench and its workers
    proc.wait()
    killed = _verdicts(tmp_path / "shard-2")
    assert 1 <= len(killed) < CELLS // 3
    early = subprocess.run(
        [sys.executable, "-m", "bench", "merge", *(str(tmp_path / f"shard-{i}") for i in (1, 2, 3)),
         "--out", str(tmp_path / "early")], capture_output=True, text=True, env=_env(),
    )  # fmt: skip
    assert early.returncode == 2 and str(tmp_path / "shard-2") in early.stderr, early.stderr
    resumed = subprocess.run(script, env=env, capture_output=True, text=True)  # --resume
    assert resumed.returncode == 0, resumed.stderr
    assert "already done" in resumed.stdout
    after = _verdicts(tmp_path / "shard-2")
    assert len(after) == CELLS // 3 and all(after[c] == v for c, v in killed.items())
    assert main(["merge", *(str(tmp_path / f"shard-{i}") for i in (1, 2, 3)),
                 "--out", str(tmp_path / "merged")]) == 0  # fmt: skip
    assert _verdicts(tmp_path / "merged") == _verdicts(sweep["whole"])


# -- hostile merges: one line, exit 2, nothing written -------------------------------------


def _copy(sweep: dict[str, Path], tmp_path: Path) -> list[Path]:
    dirs = []
    for i in (1, 2, 3):
        dirs.append(tmp_path / f"s{i}")
        shutil.copytree(sweep["slurm"] / f"shard-{i}", dirs[-1])
    return dirs


def _refused(args: list[str], capsys, out: Path, *needles: str) -> None:
    before = sorted(out.rglob("*")) if out.exists() else None
    assert main(["merge", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench: error: merge") and "\n" not in err, err
    assert all(n in err for n in needles), err
    assert (sorted(out.rglob("*")) if out.exists() else None) == before  # nothing written


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_hostile_merges_are_one_line_and_write_nothing(sweep, tmp_path, capsys) -> None:
    s1, s2, s3 = _copy(sweep, tmp_path)
    out = tmp_path / "out"
    _refused([str(s1), str(s2)], capsys, out, "have no record", "3/3 not given")
    _refused([str(s1), str(s2), str(s1)], capsys, out, "given twice")
    proc = subprocess.run([sys.executable, "-m", "bench", "merge", str(s1), str(s1), "--out",
                           str(out)], capture_output=True, text=True, env=_env())  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "given twice" in proc.stderr
    _refused([str(s1), str(s2), str(s3)], capsys, s2, "one of the shard folders")
    _refused([str(s1), str(s2), str(s3)], capsys, s1 / "sub", "or inside one")
    assert not (s1 / "sub").exists()
    assert not out.exists()
    other = tmp_path / "other"  # a shard of another sweep: its config differs in seed
    shutil.copytree(s3, other)
    _edit(other / "run.json", lambda d: d["config"].update(seed=7))
    _refused([str(s1), str(s2), str(other)], capsys, out, "edited")
    _edit(other / "run.json", lambda d: d["sweep"].update(id=sweep_id(d["config"])))
    _refused([str(s1), str(s2), str(other)], capsys, out, "another sweep", "seed")
    plain = tmp_path / "plain"
    shutil.copytree(s3, plain)
    _edit(plain / "run.json", lambda d: d.pop("sweep"))
    _refused([str(s1), str(s2), str(plain)], capsys, out, "is not a shard")
    twice = tmp_path / "twice"
    shutil.copytree(s2, twice)
    _refused([str(s1), str(s2), str(twice)], capsys, out, "both shard 2/3")
    with (s3 / "results.jsonl").open("a") as f:
        f.write("{not json\n")
    _refused([str(s1), str(s2), str(s3)], capsys, out, "results.jsonl:9", "not JSON")
    stray = json.loads((s1 / "results.jsonl").read_text().splitlines()[0])  # shard 1's cell
    stray["run_id"] = json.loads((s2 / "run.json").read_text())["run_id"]
    shutil.rmtree(s3)
    shutil.copytree(sweep["slurm"] / "shard-3", s3)
    with (s2 / "results.jsonl").open("a") as f:
        f.write(json.dumps(stray) + "\n")
    _refused([str(s1), str(s2), str(s3)], capsys, out, stray["cell_id"])
    assert not out.exists()
    _refused([str(tmp_path / "nowhere"), str(s1)], capsys, out, "no such folder")


def test_merge_holds_the_out_folders_lock_and_refuses_a_used_out(sweep, tmp_path, capsys) -> None:
    dirs = [str(d) for d in _copy(sweep, tmp_path)]
    out = tmp_path / "out"
    out.mkdir()
    with RunLock(out) as lock:
        lock.acquire(["holder"])
        assert main(["merge", *dirs, "--out", str(out)]) == 2
        assert "holder" in capsys.readouterr().err
    assert main(["merge", *dirs, "--out", str(out)]) == 0
    capsys.readouterr()
    _refused(dirs, capsys, out.parent / "out", "already holds a run")


def test_mixed_hardware_is_refused_unless_allowed_then_grouped_by_machine(
    sweep, tmp_path, capsys
) -> None:
    s1, s2, s3 = _copy(sweep, tmp_path)
    _edit(s3 / "env.json", lambda e: e.update(cpu_model="Other CPU 9000", host="node-b"))
    _edit(s3 / "env.json", lambda e: e["versions"].update(onnxruntime="0.0.1"))
    dirs = [str(s1), str(s2), str(s3)]
    _refused(dirs, capsys, tmp_path / "m", "different hardware", "cpu_model",
             "versions.onnxruntime", "--allow-mixed-hardware")  # fmt: skip
    assert main(["merge", *dirs, "--out", str(tmp_path / "m"), "--allow-mixed-hardware"]) == 0
    report = (tmp_path / "m" / "report.md").read_text()
    sections = report.split("\n## machine ")[1:]
    assert len(sections) == 2 and "Other CPU 9000" in sections[1]
    merged = json.loads((tmp_path / "m" / "env.json").read_text())
    groups = machine_groups(read_records(tmp_path / "m"), merged)
    assert groups is not None and [len(g[1]) for g in groups] == [16, 8]
    assert {r["cell_id"] for r in groups[1][1]} == {r["cell_id"] for r in read_records(s3)}
    html = (tmp_path / "m" / "report.html").read_text()
    assert html.count("<h1>machine ") == 2
    env = json.loads((tmp_path / "m" / "env.json").read_text())
    assert env["merged"]["mixed_hardware"] and len(env["merged"]["machines"]) == 2


def test_an_empty_shard_says_so_leaves_a_valid_folder_and_merges(tmp_path) -> None:
    grid = ["--models", "simple_cnn", "--backends", "ort-cpu", "--no-baseline", "--opsets", "18",
            "--batch-sizes", "1", "--no-control", *FAST_TIMING]  # fmt: skip
    procs = {i: subprocess.run([sys.executable, "-m", "bench", "run", *grid, "--shard", f"{i}/2",
                                "--out", str(tmp_path / f"s{i}")],
                               capture_output=True, text=True, env=_env())
             for i in (1, 2)}  # fmt: skip
    assert all(p.returncode == 0 for p in procs.values()), procs[2].stderr
    assert "shard 2/2 holds no cells (the grid has 1 cells for 2 shards)" in procs[2].stdout
    empty = tmp_path / "s2"
    assert (empty / "results.jsonl").read_text() == ""
    assert "No cell has a record." in (empty / "report.md").read_text()
    assert json.loads((empty / "run.json").read_text())["sweep"] == {
        "id": sweep_id(json.loads((empty / "run.json").read_text())["config"]),
        "shard": 2, "shards": 2, "cells": 0,
    }  # fmt: skip
    assert main(["report", str(empty)]) == 0  # an empty shard is not an empty results file
    assert main(["history", "add", str(empty), "--db", str(tmp_path / "h.db")]) == 0
    assert main(["merge", str(tmp_path / "s1"), str(empty), "--out", str(tmp_path / "m")]) == 0
    assert _verdicts(tmp_path / "m") == _verdicts(tmp_path / "s1") and len(_verdicts(empty)) == 0


def test_a_torn_or_missing_control_record_is_an_unfinished_shard_that_resume_finishes(
    tmp_path, capsys
) -> None:
    """A shard killed while writing its control record (its last line) once merged without
    it, silently; now merge names the line and says to resume, and the resume measures it."""
    grid = ["--models", "mlp", "--backends", "ort-cpu", "--no-baseline", "--opsets", "18",
            "--batch-sizes", "1", *FAST_TIMING]  # fmt: skip
    shard = tmp_path / "s1"
    made = subprocess.run([sys.executable, "-m", "bench", "run", *grid, "--shard", "1/1",
                           "--out", str(shard)], capture_output=True, text=True, env=_env())  # fmt: skip
    assert made.returncode == 0, made.stderr
    results = shard / "results.jsonl"
    cell, control = results.read_text().splitlines()
    assert json.loads(control)["kind"] == "control"
    out = tmp_path / "m"
    results.write_text(cell + "\n" + control[: len(control) // 2])  # SIGKILL mid-write
    _refused([str(shard)], capsys, out, f"{results}:2: a torn last line",
             f"unfinished shard: finish it with bench run --resume {shard}")  # fmt: skip
    results.write_text(cell + "\n")  # killed before the control workload's record
    _refused([str(shard)], capsys, out, "no record of the control workload (control/control",
             f"bench run --resume {shard}")  # fmt: skip
    resumed = subprocess.run([sys.executable, "-m", "bench", "run", "--resume", str(shard)],
                             capture_output=True, text=True, env=_env())  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "0 cells" in resumed.stdout and "control workload's record is missing" in resumed.stdout
    lines = results.read_text().splitlines()
    assert lines[0] == cell and [json.loads(x)["kind"] for x in lines] == ["cell", "control"]
    assert main(["merge", str(shard), "--out", str(out)]) == 0
    assert [r["kind"] for r in read_records(out)] == ["cell", "control"]


def test_a_host_name_alone_is_not_other_hardware(sweep, tmp_path, capsys) -> None:
    s1, s2, s3 = _copy(sweep, tmp_path)
    _edit(s2 / "env.json", lambda e: e.update(host="twin-node", memory_gib=1.0))
    assert main(["merge", str(s1), str(s2), str(s3), "--out", str(tmp_path / "m")]) == 0
    env = json.loads((tmp_path / "m" / "env.json").read_text())
    assert not env["merged"]["mixed_hardware"] and len(env["merged"]["machines"]) == 1
    assert "## machine" not in (tmp_path / "m" / "report.md").read_text()
