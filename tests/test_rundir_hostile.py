"""A run folder under attack: concurrent runs, damaged files, foreign records, newer schemas,
flags that would change a resumed run, a full disk, a read-only folder, missing report
libraries. Every case runs `python -m bench` as a user would and checks the documented exit
status, that no traceback reaches the user, and that the records on disk are untouched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FAST_TIMING, ROOT

GRID = ["--backends", "ort-cpu", "--no-baseline", "--no-control", "--opsets", "17",
        "--batch-sizes", "1,2", *FAST_TIMING, "--trials", "1"]  # fmt: skip
#: Runs bench with a patch applied first (the PATCH environment variable, Python source).
DRIVER = (
    "import os, sys; exec(os.environ.get('PATCH', '')); "
    "from bench.cli import main; raise SystemExit(main(sys.argv[1:]))"
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), *sys.path])
    return env


def bench(*args: str, patch: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**_env(), "PATCH": patch}
    return subprocess.run([sys.executable, "-c", DRIVER, *args], capture_output=True, text=True,
                          env=env, timeout=timeout)  # fmt: skip


def clean(proc: subprocess.CompletedProcess, code: int) -> None:
    """The documented exit status, and no traceback shown to the user."""
    assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small finished run, copied by `run_dir` for each test."""
    out = tmp_path_factory.mktemp("made") / "run"
    proc = bench("run", *GRID, "--out", str(out))
    clean(proc, 0)
    return out


@pytest.fixture
def run_dir(made: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(made, copy)
    return copy


def lines(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines()]


def write_lines(run: Path, records: list) -> bytes:
    data = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    (run / "results.jsonl").write_text(data)
    return data.encode()


# -- one run per folder ---------------------------------------------------------------------


def test_two_runs_started_at_once_on_one_folder_one_runs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    driver = "import sys, fault_backends; fault_backends.register(); " + DRIVER
    slow = ["--backends", "fault-slow", *GRID[2:], "--batch-sizes", "1,2,3,4", "--trials", "3",
            "--min-time", "0.3", "--max-time", "0.4"]  # fmt: skip
    cmd = [sys.executable, "-c", driver, "run", *slow, "--out", str(out)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env()) for _ in range(2)]  # fmt: skip
    results = [(p, *p.communicate(timeout=300)) for p in procs]
    codes = sorted(p.returncode for p, _, _ in results)
    assert codes == [0, 2], [e[-2000:] for _, _, e in results]
    loser = next(err for p, _, err in results if p.returncode == 2)
    assert "is in use by pid" in loser and "Traceback" not in loser
    assert len([x for x in loser.splitlines() if x.startswith("bench:")]) == 1
    records = lines(out)
    assert len(records) == 4 and len({r["run_id"] for r in records}) == 1


@pytest.fixture
def held(run_dir: Path) -> Iterator[Path]:
    """`run_dir` locked by this test process, as a running bench would hold it."""
    from bench.lock import RunLock

    lock = RunLock(run_dir)
    lock.acquire(["bench", "run", "--out", str(run_dir)])
    yield run_dir
    lock.release()


def test_resume_of_a_folder_in_use_is_refused_naming_the_holder(held: Path) -> None:
    before = (held / "results.jsonl").read_bytes()
    proc = bench("run", "--resume", str(held))
    clean(proc, 2)
    assert f"is in use by pid {os.getpid()}" in proc.stderr
    assert f"command: bench run --out {held}" in proc.stderr and "started 20" in proc.stderr
    assert (held / "results.jsonl").read_bytes() == before


def test_run_into_a_folder_in_use_is_refused(held: Path) -> None:
    proc = bench("run", *GRID, "--out", str(held))
    clean(proc, 2)
    assert "in use by pid" in proc.stderr


def test_report_of_a_folder_in_use_says_so(held: Path) -> None:
    before = (held / "results.jsonl").read_bytes()
    proc = bench("report", str(held))
    clean(proc, 0)
    assert "a run is in progress in this folder" in proc.stderr
    assert "a run is in progress" in (held / "report.md").read_text()
    assert (held / "results.jsonl").read_bytes() == before


def test_run_into_a_folder_that_holds_a_run_is_refused(run_dir: Path) -> None:
    before = (run_dir / "results.jsonl").read_bytes()
    proc = bench("run", *GRID, "--out", str(run_dir))
    clean(proc, 2)
    assert "already holds a run" in proc.stderr and f"--resume {run_dir}" in proc.stderr
    assert (run_dir / "results.jsonl").read_bytes() == before


# -- env.json and run.json --------------------------------------------------------------------

BAD_JSON = [
    ("not JSON", "{'host': 1", "not JSON"),
    ("a list", "[1, 2]", "a JSON list, not an object"),
    ("inf", '{"memory_gib": 1e999}', "too large"),
    ("NaN", '{"memory_gib": NaN}', "not a number bench writes"),
    ("deep", "[" * 100000 + "]" * 100000, "not JSON"),
    ("binary", "\udcff", "not UTF-8"),
]


@pytest.mark.parametrize(("case", "text", "why"), BAD_JSON, ids=[c[0] for c in BAD_JSON])
def test_a_damaged_env_json_is_named_in_the_report(run_dir: Path, case, text, why) -> None:
    before = (run_dir / "results.jsonl").read_bytes()
    (run_dir / "env.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    proc = bench("report", str(run_dir))
    clean(proc, 0)
    report = (run_dir / "report.md").read_text()
    assert "env.json unreadable" in report and why in report, report[:600]
    assert "env.json unreadable" in (run_dir / "report.html").read_text()
    assert (run_dir / "results.jsonl").read_bytes() == before
    if case == "not JSON":  # resume reads env.json strictly
        resumed = bench("run", "--resume", str(run_dir))
        clean(resumed, 2)
        assert "env.json" in resumed.stderr and why in resumed.stderr


def test_env_fields_of_the_wrong_type_are_left_out(run_dir: Path) -> None:
    env = json.loads((run_dir / "env.json").read_text())
    env.update(gpus="abc", versions=[1, 2], command={"a": 1}, physical_cores=[4])
    (run_dir / "env.json").write_text(json.dumps(env))
    proc = bench("report", str(run_dir))
    clean(proc, 0)
    report = (run_dir / "report.md").read_text()
    for name in ("gpus", "versions", "command", "physical_cores"):
        assert f"env.json: {name} has the wrong type" in report


@pytest.mark.parametrize(("case", "text", "why"), BAD_JSON[:3], ids=[c[0] for c in BAD_JSON[:3]])
def test_a_damaged_run_json_compares_no_settings_and_refuses_resume(
    run_dir: Path, tmp_path: Path, made: Path, case, text, why
) -> None:
    (run_dir / "run.json").write_text(text)
    if case == "not JSON":
        proc = bench("compare", str(made), str(run_dir), "--out", str(tmp_path / "cmp"))
        clean(proc, 0)
        assert "run.json unreadable" in (tmp_path / "cmp" / "compare.md").read_text()
    resumed = bench("run", "--resume", str(run_dir))
    clean(resumed, 2)
    assert "run.json" in resumed.stderr and why in resumed.stderr


@pytest.mark.parametrize(
    ("change", "why"),
    [({"models": 5}, "config.models has the wrong type"),
     ({"timing": {"trials": "x"}}, "config.timing"),
     ({"batch_sizes": [[1]]}, "config.batch_sizes"),
     ({"backends": None}, "config.backends"),
     ({"models": ["no_such_model"]}, "no_such_model")],
)  # fmt: skip
def test_resume_refuses_a_config_it_cannot_run(run_dir: Path, change: dict, why: str) -> None:
    saved = json.loads((run_dir / "run.json").read_text())
    saved["config"].update(change)
    (run_dir / "run.json").write_text(json.dumps(saved))
    before = (run_dir / "results.jsonl").read_bytes()
    proc = bench("run", "--resume", str(run_dir))
    clean(proc, 2)
    assert why in proc.stderr
    assert (run_dir / "results.jsonl").read_bytes() == before


# -- records ------------------------------------------------------------------------------


def _set(path: str, value: object):
    def change(record: dict) -> dict:
        keys = path.split(".")
        target = record
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
        return record

    return change


WRONG_TYPES = [
    ("latency", _set("latency", [1, 2]), "latency has the wrong type"),
    ("center_us", _set("latency.inference.center_us", "fast"), "center_us has the wrong type"),
    ("batch_size", _set("batch_size", [1]), "batch_size [1]"),
    ("inf", _set("latency.inference.center_us", 1e309), "center_us has the wrong type"),
    ("dims", _set("dims", ["seq"]), "dims has the wrong type"),
    ("parity", _set("parity.outputs", [{"max_abs_err": "big"}]), "max_abs_err"),
    ("warnings", _set("warnings", "one"), "warnings has the wrong type"),
    ("kind", _set("kind", "other"), "kind 'other'"),
]


def test_records_with_wrong_types_are_skipped_counted_and_refused_by_resume(
    run_dir: Path, tmp_path: Path, made: Path
) -> None:
    good = lines(run_dir)
    bad = [change(json.loads(json.dumps(good[1]))) for _, change, _ in WRONG_TYPES]
    before = write_lines(run_dir, [good[0], *bad, good[1]])
    proc = bench("report", str(run_dir))
    clean(proc, 0)
    for number, (_, _, why) in enumerate(WRONG_TYPES, 2):
        assert f"results.jsonl:{number}: " in proc.stderr and why in proc.stderr, proc.stderr
    count = f"{len(bad)} unreadable records in results.jsonl (lines 2, 3, 4"
    assert count in (run_dir / "report.md").read_text()
    assert count in (run_dir / "report.html").read_text()
    assert "2 ok" in (run_dir / "report.md").read_text()  # the good records are all there
    compared = bench("compare", str(made), str(run_dir), "--out", str(tmp_path / "cmp"))
    clean(compared, 0)
    assert count in (tmp_path / "cmp" / "compare.md").read_text()
    resumed = bench("run", "--resume", str(run_dir))
    clean(resumed, 2)
    assert "results.jsonl:2: latency has the wrong type" in resumed.stderr
    assert (run_dir / "results.jsonl").read_bytes() == before


def test_a_torn_record_in_the_middle_is_counted_not_lost(run_dir: Path) -> None:
    records = lines(run_dir)
    before = write_lines(run_dir, [records[0], json.dumps(records[1])[:50], records[1]])
    proc = bench("report", str(run_dir))
    clean(proc, 0)
    assert "results.jsonl:2: not JSON" in proc.stderr
    assert "1 unreadable record" in (run_dir / "report.md").read_text()
    resumed = bench("run", "--resume", str(run_dir))
    clean(resumed, 2)
    assert "results.jsonl:2: not JSON" in resumed.stderr
    assert (run_dir / "results.jsonl").read_bytes() == before


def test_a_torn_last_line_is_named_in_the_report_not_dropped_silently(run_dir: Path) -> None:
    records = lines(run_dir)
    (run_dir / "results.jsonl").write_text(
        "\n".join(json.dumps(r) for r in records[:-1]) + "\n" + json.dumps(records[-1])[:50]
    )
    proc = bench("report", str(run_dir))
    clean(proc, 0)
    caveat = f"results.jsonl:{len(records)}: a torn last line (a run killed while writing it)"
    assert caveat in proc.stderr
    assert caveat in (run_dir / "report.md").read_text()
    assert f"bench run --resume {run_dir} measures it" in (run_dir / "report.md").read_text()


def test_a_file_of_nothing_but_garbage_is_refused(run_dir: Path) -> None:
    write_lines(run_dir, ["garbage", "[1]", '"text"'])
    proc = bench("report", str(run_dir))
    clean(proc, 2)
    assert "results.jsonl:1: not JSON" in proc.stderr and "no line of it" in proc.stderr


def test_a_newer_schema_record_is_refused_up_front(run_dir: Path, made: Path, tmp_path) -> None:
    records = lines(run_dir)
    records[1]["schema_version"] = 99
    before = write_lines(run_dir, records)
    for proc in (bench("report", str(run_dir)), bench("run", "--resume", str(run_dir)),
                 bench("compare", str(made), str(run_dir), "--out", str(tmp_path / "c"))):  # fmt: skip
        clean(proc, 2)
        assert "results.jsonl:2 has schema_version 99" in proc.stderr
        assert "upgrade bench" in proc.stderr
    assert (run_dir / "results.jsonl").read_bytes() == before
    assert not (tmp_path / "c").exists()


def test_resume_refuses_records_of_another_run_or_configuration(run_dir: Path) -> None:
    records = lines(run_dir)
    records[0]["run_id"] = "someone-else"
    before = write_lines(run_dir, records)
    proc = bench("run", "--resume", str(run_dir))
    clean(proc, 2)
    assert "results.jsonl:1 is a record of run 'someone-else'" in proc.stderr
    records[0]["run_id"] = records[1]["run_id"]
    records[0]["cell_id"] = "mlp/ort-cpu/auto-op17/b1/fp32"
    before = write_lines(run_dir, records)
    proc = bench("run", "--resume", str(run_dir))
    clean(proc, 2)
    assert "holds another configuration" in proc.stderr and "results.jsonl:1" in proc.stderr
    saved = json.loads((run_dir / "run.json").read_text())
    saved["config"]["batch_sizes"] = [4]  # run.json of another configuration than the records
    (run_dir / "run.json").write_text(json.dumps(saved))
    write_lines(run_dir, lines(run_dir)[1:])
    before = (run_dir / "results.jsonl").read_bytes()
    proc = bench("run", "--resume", str(run_dir))
    clean(proc, 2)
    assert "holds another configuration" in proc.stderr
    assert (run_dir / "results.jsonl").read_bytes() == before


@pytest.mark.parametrize(
    ("flags", "named"),
    [(["--models", "mlp"], "--models"),
     (["--trials=3", "--backends", "openvino"], "--trials, --backends"),
     (["--no-baseline", "--out", "elsewhere"], "--no-baseline, --out"),
     (["--config", "x.toml"], "--config")],
)  # fmt: skip
def test_flags_that_change_a_resumed_run_are_refused(run_dir: Path, flags, named) -> None:
    before = (run_dir / "results.jsonl").read_bytes()
    proc = bench("run", "--resume", str(run_dir), *flags)
    clean(proc, 2)
    assert f"would change it: {named}" in proc.stderr
    assert (run_dir / "results.jsonl").read_bytes() == before


def test_output_flags_go_with_resume(run_dir: Path) -> None:
    before = (run_dir / "results.jsonl").read_bytes()
    proc = bench("run", "--resume", str(run_dir), "--allow-failures", "--retry-failed")
    clean(proc, 0)
    assert "(2 already done)" in proc.stdout
    assert (run_dir / "results.jsonl").read_bytes() == before
    assert json.loads((run_dir / "env.json").read_text())["resumed_with"]


# -- a full disk, a read-only folder -------------------------------------------------------

#: os.write fails with ENOSPC for files of the run folder whose name contains TARGET, after
#: writing the first half of the data (a partial write, as a filling disk does).
ENOSPC = """
import errno, os
_write, _target = os.write, os.environ["TARGET"]
def _full(fd, data):
    try:
        name = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        name = ""
    if _target in os.path.basename(name):
        if len(data) > 1 and os.environ.get("HALF"):
            _write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")
    return _write(fd, data)
os.write = _full
"""


def _no_temp_files(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if ".tmp-" in p.name], list(folder.rglob("*"))


def test_disk_full_while_writing_reports_leaves_the_old_set(run_dir: Path, monkeypatch) -> None:
    old = {n: (run_dir / n).read_bytes() for n in ("report.md", "summary.csv", "report.html")}
    monkeypatch.setenv("TARGET", "report.html")
    proc = bench("report", str(run_dir), patch=ENOSPC)
    clean(proc, 1)
    assert "report.html (No space left on device)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert {n: (run_dir / n).read_bytes() for n in old} == old  # none of the set replaced
    _no_temp_files(run_dir)


def test_disk_full_while_appending_a_record(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "run"
    monkeypatch.setenv("TARGET", "results.jsonl")
    monkeypatch.setenv("HALF", "1")
    proc = bench("run", *GRID, "--out", str(out), patch=ENOSPC)
    clean(proc, 1)
    assert "results.jsonl (No space left on device)" in proc.stderr
    assert f"finish with: bench run --resume {out}" in proc.stderr
    assert (out / "results.jsonl").read_bytes() == b""  # the half-written record was cut
    monkeypatch.delenv("TARGET")
    done = bench("run", "--resume", str(out))
    clean(done, 0)
    assert len(lines(out)) == 2


def test_disk_full_before_measuring(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TARGET", "run.json")
    proc = bench("run", *GRID, "--out", str(tmp_path / "run"), patch=ENOSPC)
    clean(proc, 2)
    assert "run.json (No space left on device); nothing was measured" in proc.stderr
    _no_temp_files(tmp_path / "run")
    assert not (tmp_path / "run" / "run.json").exists()


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mount {' '.join(args)}: {done.stderr.strip()} (needs root)")


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a real full disk."""
    mount = tmp_path / "fs"
    mount.mkdir()
    _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount))
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_really_full_disk(run_dir: Path, tiny_fs: Path) -> None:
    copy = tiny_fs / "run"
    copy.mkdir()
    for name in ("results.jsonl", "env.json", "run.json", "report.md"):
        shutil.copy(run_dir / name, copy / name)
    fd = os.open(tiny_fs / "filler", os.O_WRONLY | os.O_CREAT)
    with pytest.raises(OSError):
        while True:
            os.write(fd, b"x" * 4096)
    os.close(fd)
    before = (copy / "results.jsonl").read_bytes()
    old_md = (copy / "report.md").read_bytes()
    proc = bench("report", str(copy))
    clean(proc, 1)
    assert "No space left on device" in proc.stderr
    assert (copy / "report.md").read_bytes() == old_md and not (copy / "summary.csv").exists()
    _no_temp_files(copy)
    proc = bench("run", *GRID, "--out", str(tiny_fs / "new"))
    clean(proc, 2)
    assert "nothing was measured" in proc.stderr
    assert (copy / "results.jsonl").read_bytes() == before


@pytest.fixture
def read_only(run_dir: Path, tmp_path: Path) -> Iterator[Path]:
    """`run_dir` seen through a read-only bind mount (root ignores chmod)."""
    view = tmp_path / "ro"
    view.mkdir()
    _mount("--bind", str(run_dir), str(view))
    try:
        _mount("-o", "remount,bind,ro", str(view))
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def test_a_read_only_folder(read_only: Path, made: Path, tmp_path: Path) -> None:
    before = (read_only / "results.jsonl").read_bytes()
    proc = bench("report", str(read_only))
    clean(proc, 1)
    assert "Read-only file system" in proc.stderr and "nothing was replaced" in proc.stderr
    proc = bench("run", "--resume", str(read_only))
    clean(proc, 2)
    assert "cannot write" in proc.stderr and "Read-only file system" in proc.stderr
    proc = bench("compare", str(made), str(read_only), "--out", str(read_only / "cmp"))
    clean(proc, 1)
    proc = bench("compare", str(made), str(read_only), "--out", str(tmp_path / "cmp"))
    clean(proc, 0)  # reading a read-only folder is fine
    assert (read_only / "results.jsonl").read_bytes() == before
    _no_temp_files(read_only)


# -- measuring without the report libraries ------------------------------------------------

NO_PLOTLY = "import sys; sys.modules['plotly'] = None; sys.modules['pandas'] = None"


def test_a_run_without_plotly_keeps_its_records(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = bench("run", *GRID, "--out", str(out), patch=NO_PLOTLY)
    clean(proc, 1)
    assert "reports not written" in proc.stderr and f"bench report {out}" in proc.stderr
    assert len(lines(out)) == 2 and not (out / "report.md").exists()
    clean(bench("report", str(out)), 0)
    assert (out / "report.md").exists()


# -- the pieces, in process --------------------------------------------------------------


def test_given_flags_are_the_ones_typed() -> None:
    from bench.parser import build_parser

    _, run = build_parser()
    argv = ["run", "--resume", "d", "--trials=3", "--png", "--models", "--x", "--", "--seed"]
    assert run.given(argv) == ["resume", "trials", "png", "models"]


def test_infinities_bench_writes_are_read_back_as_floats(tmp_path: Path) -> None:
    from bench.report import write_reports
    from bench.results import read_records

    data = ROOT / "tests" / "data" / "v3_default_threads" / "results.jsonl"
    records = [json.loads(x) for x in data.read_text().splitlines()]
    cell = next(r for r in records if r.get("kind") == "cell" and r["status"] == "ok")
    cell["parity"]["outputs"][0]["tol_ratio"] = "inf"  # as bench.record.jsonable writes it
    cell["latency"]["inference"]["ci95_high_us"] = "inf"
    write_lines(tmp_path, records)
    read = read_records(tmp_path)
    assert any(r.get("latency", {}).get("inference", {}).get("ci95_high_us") == float("inf")
               for r in read if r.get("latency"))  # fmt: skip
    write_reports(tmp_path, read, {})
    assert (tmp_path / "report.md").exists()


def test_damaged_folders_are_named_by_the_command_that_read_them(run_dir: Path) -> None:
    """`bench explain` checks a folder as --resume does, but says it is explain; a run.json
    that is a folder is named as such, not as missing."""
    (run_dir / "results.jsonl").write_bytes(b"\x00\xffgarbage\n")
    cell = "simple_cnn/ort-cpu/dynamo-op18/b1/fp32"
    proc = bench("explain", str(run_dir), cell)
    clean(proc, 2)
    assert proc.stderr.startswith("bench: error: explain: "), proc.stderr
    assert "bench report shows the records that are readable" in proc.stderr, proc.stderr
    (run_dir / "run.json").unlink()
    (run_dir / "run.json").mkdir()
    proc = bench("run", "--resume", str(run_dir))
    clean(proc, 2)
    assert "is not a run folder (run.json is not a file)" in proc.stderr, proc.stderr


def test_a_journal_that_is_not_a_file_is_refused_by_resume(run_dir: Path) -> None:
    (run_dir / "trials.jsonl").mkdir()
    proc = bench("run", "--resume", str(run_dir))
    clean(proc, 2)
    assert "trials.jsonl: cannot be read and written (Is a directory)" in proc.stderr, proc.stderr
