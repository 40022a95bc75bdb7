"""Seeded mutations of a real run folder, read by `bench report` and `bench compare`.

Whatever a damaged folder holds (a value of the wrong type anywhere in a record, a number too
large for a float, cut or flipped bytes, a damaged env.json or run.json), the commands end with a
documented exit status (0, 1 or 2), never an uncaught exception, and never change the records.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench.cli import main

DATA = Path(__file__).parent / "data" / "v3_default_threads"

HOSTILE_VALUES: list[Any] = [
    None, "x", "", -1, 0, 1e308, -1e308, 10**400, 2.5, True, [], {}, [1, "a"], {"a": None},
    "\n# injected heading", "| a | b |", "```", "<script>alert(1)</script>",
]  # fmt: skip


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into nested dicts and lists of `value`."""
    found: list[tuple] = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            found += _paths(item, (*prefix, index))
    return found


def _set(target: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _mutate_records(lines: list[str], rng: random.Random) -> list[str]:
    records = [json.loads(line) for line in lines]
    for _ in range(rng.randint(1, 3)):
        record = rng.choice(records)
        path = rng.choice(_paths(record))
        _set(record, path, copy.deepcopy(rng.choice(HOSTILE_VALUES)))
    return [json.dumps(r) for r in records]


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(["truncate", "flip", "garbage_line", "join_lines", "big_number"])
    if kind == "truncate":
        return data[: rng.randrange(1, len(data))]
    if kind == "flip":
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        return bytes(buf)
    lines = data.split(b"\n")
    where = rng.randrange(len(lines))
    if kind == "garbage_line":
        lines.insert(where, rng.choice([b"[1, 2]", b"null", b"\xff\xfe", b"{", b'"text"', b"{}"]))
    elif kind == "join_lines" and where + 1 < len(lines):
        lines[where : where + 2] = [lines[where] + lines[where + 1]]
    else:
        lines[where] = lines[where].replace(b'"center_us": ', b'"center_us": 1e999', 1)
    return b"\n".join(lines)


def _damage(folder: Path, seed: int) -> str:
    rng = random.Random(seed)
    target = rng.choice(["records", "records", "records_bytes", "env", "run"])
    if target == "records":
        path = folder / "results.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines()
        path.write_text("\n".join(_mutate_records(lines, rng)) + "\n", encoding="utf-8")
    elif target == "records_bytes":
        path = folder / "results.jsonl"
        path.write_bytes(_mutate_bytes(path.read_bytes(), rng))
    else:
        path = folder / ("env.json" if target == "env" else "run.json")
        if rng.random() < 0.5:
            path.write_bytes(_mutate_bytes(path.read_bytes(), rng))
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
            if rng.random() < 0.3:
                data = rng.choice([[], "text", None, 3])
            else:
                _set(data, rng.choice(_paths(data)), copy.deepcopy(rng.choice(HOSTILE_VALUES)))
            path.write_text(json.dumps(data), encoding="utf-8")
    return target


@pytest.mark.parametrize("seed", range(60))
def test_damaged_folder_never_crashes_report_or_compare(
    seed: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "damaged"
    shutil.copytree(DATA, folder)
    what = _damage(folder, seed)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    report_status = main(["report", str(folder)])
    compare_status = main(["compare", str(DATA), str(folder), "--out", str(tmp_path / "cmp")])
    err = capsys.readouterr().err
    assert report_status in (0, 1, 2), what
    assert compare_status in (0, 1, 2), what
    assert "Traceback" not in err
    for line in err.splitlines():
        if line.startswith("bench: error:"):
            assert len(line) < 600, "an error is one readable line"
    for name, data in before.items():
        assert (folder / name).read_bytes() == data, f"{name} changed"


@pytest.mark.parametrize("seed", range(60, 90))
def test_damaged_folder_is_refused_or_resumed_without_loss(
    seed: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "damaged"
    shutil.copytree(DATA, folder)
    what = _damage(folder, seed)
    records_before = (folder / "results.jsonl").read_bytes()
    status = main(["run", "--resume", str(folder)])
    err = capsys.readouterr().err
    assert status in (0, 1, 2), what
    assert "Traceback" not in err
    after = (folder / "results.jsonl").read_bytes()
    if status == 2:  # refused: nothing touched
        assert after == records_before, what
    else:  # resumed: every whole line that was there is still there (a torn last line,
        # what a killed run leaves, is the one thing resume may cut: its cell runs again)
        whole = records_before[: records_before.rfind(b"\n") + 1]
        assert after.startswith(whole.rstrip(b"\n")), what


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("latency", "inference", "trial_spread"), 1e308),  # once: OverflowError in the MDE
        (("mode",), None),  # once: TypeError sorting the ranking
        (("export", "export_s"), "inf"),  # once: TypeError in the cold-start chart
        (("export", "export_s"), "-inf"),
    ],
)
def test_values_an_attacker_found_are_read_safely(
    path: tuple, value: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "damaged"
    shutil.copytree(DATA, folder)
    results = folder / "results.jsonl"
    records = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    _set(records[2], path, value)
    results.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert main(["report", str(folder)]) in (0, 1)
    assert main(["compare", str(DATA), str(folder), "--out", str(tmp_path / "cmp")]) in (0, 1)
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c["timing"].update(trials=10**9), "--trials"),  # once: ran until killed
        (lambda c: c["timing"].update(max_time=1e-9, min_time=1.0), "--max-time"),
        (lambda c: c.update(seed=-1), "--seed"),
        (lambda c: c.update(cache_dir="/proc/nope"), "--cache-dir"),  # once: failed per cell
    ],
)
def test_resume_holds_a_saved_config_to_the_flags_limits(
    change: Any, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "edited"
    shutil.copytree(DATA, folder)
    saved = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    change(saved["config"])
    (folder / "run.json").write_text(json.dumps(saved), encoding="utf-8")
    before = (folder / "results.jsonl").read_bytes()
    assert main(["run", "--resume", str(folder)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert (folder / "results.jsonl").read_bytes() == before
