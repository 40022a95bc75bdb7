"""A model that prints without end fills no disk: worker logs and the probe's output are capped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import FAST_TIMING

from bench.outputcap import LOG_HEAD_BYTES, LOG_TAIL_BYTES, CappedOutput

PRINTS = "print('x' * 100000, flush=True)"
CHATTY_MODEL = f"""
import torch
from bench.models import InputSpec

class Chatty(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        {PRINTS}
        return self.fc(x)

def make():
    {PRINTS}
    return Chatty(), [InputSpec('x', ('batch', 8), 'float32', 'normal')]
"""


def test_output_past_the_cap_is_counted_and_its_end_kept(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    out = CappedOutput(log, head_bytes=1000, tail_bytes=200)
    code = "import sys\nfor i in range(50000): print('line', i)\nsys.stderr.write('LAST WORDS\\n')"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=out.write_fd,
                            stderr=out.write_fd)  # fmt: skip
    out.child_started()
    assert proc.wait(60) == 0 and out.wait(10)
    text = log.read_text()
    head, note, tail = text[:1000], text[1000:].splitlines()[1], text[1000:]
    assert head.startswith("line 0\nline 1\n")
    assert out.dropped > 400_000 and f"{out.dropped} bytes of output were left out" in note
    assert tail.endswith(f"line 49999\nLAST WORDS\n\n[bench: end of the log; {out.dropped} bytes "
                         "were left out above]\n")  # fmt: skip
    assert len(text) < 1000 + 200 + 2 * len(note) + 10
    assert out.tail(11) == "LAST WORDS\n"


def test_a_short_output_is_kept_whole_and_memory_only_writes_nothing(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    for path in (log, None):
        out = CappedOutput(path)
        subprocess.run([sys.executable, "-c", "print('hello')"], stdout=out.write_fd, check=True)
        out.child_started()
        assert out.wait(10) and out.tail(100) == "hello\n" and out.dropped == 0
    assert log.read_text() == "hello\n"
    assert list(tmp_path.iterdir()) == [log]


def test_a_model_printing_in_its_forward_leaves_capped_logs(tmp_path: Path, bench_env) -> None:
    """The way a user meets it: 100 kB printed on every forward, a run that measures it, and
    worker logs that stop at the cap, say so, and keep the end."""
    (tmp_path / "chatty.py").write_text(CHATTY_MODEL)
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--models", f"{tmp_path / 'chatty.py'}:make",
         "--backends", "ort-cpu", "--opsets", "18", "--batch-sizes", "1", "--out", str(out),
         *FAST_TIMING, "--min-time", "0.5", "--max-time", "2", "--no-control"],
        capture_output=True, text=True, env=bench_env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "bytes more than its log keeps (a model that prints in its forward is timed" in proc.stderr
    )
    logs = {p.name: p.stat().st_size for p in (out / "logs").iterdir()}
    assert max(logs.values()) <= LOG_HEAD_BYTES + LOG_TAIL_BYTES + 200, logs
    capped = [p for p in (out / "logs").iterdir() if p.stat().st_size > LOG_HEAD_BYTES]
    assert capped, logs  # the torch worker printed well past the cap
    for path in capped:
        with path.open("rb") as f:
            f.seek(LOG_HEAD_BYTES)
            assert b"bytes of output were left out of this log" in f.read(300)
