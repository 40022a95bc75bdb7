"""bench installs one import name: a user's own `models/` and `backends/` never collide."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import FAST_TIMING

USER_MODEL = """
from torch import nn

from bench.models import InputSpec


class MyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(x).relu()


def build():
    return MyNet(), [InputSpec("x", ("batch", 6), "float32")]
"""


@pytest.fixture(scope="module")
def user_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A typical ML repository: its own `models` and `backends` packages."""
    root = tmp_path_factory.mktemp("userproj")
    for package in ("models", "backends"):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("MODELS = 'the user project'\n")
    (root / "models" / "mynet.py").write_text(textwrap.dedent(USER_MODEL))
    return root


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH: bench must resolve through its installation alone."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _commands() -> list[list[str]]:
    script = shutil.which("bench", path=str(Path(sys.executable).parent))
    forms = [[sys.executable, "-m", "bench"]]
    if script:
        forms.append([script])
    return forms


def test_top_level_models_and_backends_are_not_installed(tmp_path: Path) -> None:
    for name in ("models", "backends"):
        proc = subprocess.run(
            [sys.executable, "-c", f"import {name}"],
            cwd=tmp_path, env=_clean_env(), capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode != 0, f"a top-level {name!r} is importable"
        assert "No module named" in proc.stderr


def test_console_script_is_installed() -> None:
    assert len(_commands()) == 2, "the `bench` console script is not installed beside python"


@pytest.mark.parametrize("form", range(2), ids=["python-m-bench", "bench-script"])
def test_list_works_beside_a_users_models_package(user_project: Path, form: int) -> None:
    forms = _commands()
    if form >= len(forms):
        pytest.skip("no console script")
    proc = subprocess.run(
        [*forms[form], "list"], cwd=user_project, env=_clean_env(), capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "simple_cnn" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("form", range(2), ids=["python-m-bench", "bench-script"])
def test_run_builtin_and_users_model_beside_a_users_models_package(
    user_project: Path, form: int, tmp_path: Path
) -> None:
    forms = _commands()
    if form >= len(forms):
        pytest.skip("no console script")
    out = tmp_path / "run"
    proc = subprocess.run(
        [*forms[form], "run", "--models", "simple_cnn,models.mynet:build",
         "--backends", "ort-cpu", "--opsets", "18", "--batch-sizes", "2", "--out", str(out),
         *FAST_TIMING],
        cwd=user_project, env=_clean_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    by_model: dict[str, set[str]] = {}
    for record in records:
        if record.get("kind", "cell") != "cell":
            continue
        by_model.setdefault(record["model"], set()).add(record["status"])
    assert by_model == {"simple_cnn": {"ok"}, "models.mynet:build": {"ok"}}, records


def test_python_m_bench_from_the_folder_holding_a_clone_named_bench(tmp_path: Path) -> None:
    from conftest import ROOT

    (tmp_path / "bench").symlink_to(ROOT, target_is_directory=True)
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "list"], cwd=tmp_path, env=_clean_env(),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "simple_cnn" in proc.stdout
