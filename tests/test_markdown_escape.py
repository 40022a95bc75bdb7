"""Markdown that cannot be injected: the escaping functions of bench.report.format, and
report.md / compare.md built from hostile records."""

from __future__ import annotations

import copy
import re

import pytest

from bench.errors import meaningful_line
from bench.report.format import md_cell, md_fence, md_table, md_text
from bench.report.markdown import markdown_report

ATTACKS = [
    "\n# Heading",
    "x\n\n# Heading\n| a | b |\n|---|---|",
    "a | b",
    "```\n# out of the fence",
    "<script>alert(1)</script>",
    "</details><details open>",
    "[click](https://evil.example) ![img](https://evil.example/x.png)",
    "**bold** _em_ ~~gone~~ `code`",
    "- list\n1. ordered\n> quote",
    "&lt;b&gt; &#35;",
    "\x1b[31mred\x1b[0m\r\n\t# tab",
]


def _lines_are_literal(markdown_line: str) -> None:
    """No block syntax at the start, no unescaped inline syntax anywhere."""
    assert "\n" not in markdown_line and "\r" not in markdown_line
    assert not re.match(r"\s*(#|>|[-+*=]\s|\d+[.)]\s)", markdown_line)
    unescaped = re.findall(r"(?<!\\)[`*~]|<|(?<!\\)\]\(", markdown_line)
    assert unescaped == [], markdown_line


@pytest.mark.parametrize("attack", ATTACKS)
def test_md_text_is_one_literal_line(attack: str) -> None:
    _lines_are_literal(md_text(attack))
    assert "\x1b" not in md_text(attack)


@pytest.mark.parametrize("attack", ATTACKS)
def test_md_cell_never_splits_the_row(attack: str) -> None:
    cell = md_cell(attack)
    assert "\n" not in cell and re.search(r"(?<!\\)\|", cell) is None
    assert "<" not in cell


def test_readable_text_stays_readable() -> None:
    assert md_cell("simple_cnn · ort-cpu · dynamo op17 (same graph as op18)") == (
        "simple_cnn · ort-cpu · dynamo op17 (same graph as op18)"
    )
    assert md_cell("12.1 [12.0–12.2]¹") == "12.1 [12.0–12.2]¹"
    assert md_text("# Heading") == "\\# Heading"
    assert md_text("1. item") == "1\\. item" and md_text("12.5 µs") == "12.5 µs"
    assert md_cell("a|b") == "a\\|b"
    assert md_cell("<script>") == "&lt;script&gt;"


def test_fence_is_longer_than_any_backtick_run_inside() -> None:
    text = "bench run --out 'x\n```\n# Heading\n````'"
    fence = md_fence(text)
    assert fence[0] == fence[-1] == "`````"
    inside = fence[1].splitlines()
    assert all(not line.startswith(fence[0]) for line in inside)
    assert md_fence("plain", "bash")[0] == "```bash"


def test_table_escapes_headers_and_cells() -> None:
    table = md_table(["a|b"], [["\n# x"]])
    assert table.splitlines() == ["| a\\|b |", "|---|", "| \\# x |"]


def _record(model: str, status: str = "failed", reason: str = "boom") -> dict:
    return {
        "kind": "cell", "run_id": "r", "cell_id": f"{model}/ort-cpu/file/b1/fp32",
        "model": model, "backend": "ort-cpu", "device": "cpu", "status": status,
        "exporter": "file", "batch_size": 1, "dims": {}, "precision": "fp32",
        "mode": "latency", "reason": reason, "warnings": [],
    }  # fmt: skip


def test_report_md_from_hostile_records_has_no_injected_heading() -> None:
    evil = "evil\n# Injected heading\n"
    records = [
        _record(evil, reason="RuntimeError: boom\n# Injected heading two\n| a | b |"),
        _record("m2", status="skipped", reason="</details>\n# Injected heading three"),
    ]
    failed = copy.deepcopy(records[0])
    failed["cell_id"] += "x"
    failed["reference"] = "x\n## Injected reference"
    env = {"command": ["bench", "run", "--out", "a\n```\n# Injected in fence", "it's"]}
    md = markdown_report([*records, failed], env)
    before_fence = md.split("## Reproduce")[0]
    headings = [line for line in before_fence.splitlines() if line.startswith("#")]
    assert not [h for h in headings if re.match(r"#+ Injected", h)], headings
    assert len(headings) == 5  # bench report, failures, latency, accuracy, environment
    assert md.count("<details>") == 1 and md.count("</details>") == 1
    fenced = md.split("## Reproduce")[1]
    fence = fenced.strip().splitlines()[0]
    assert fence.startswith("````") and fenced.count(fence.removesuffix("bash")) == 2
    assert "'a\n```\n# Injected in fence'" in fenced and "'it'\"'\"'s'" in fenced


def test_meaningful_line_skips_runtime_source_locations() -> None:
    openvino = (
        "RuntimeError: Exception from src/inference/src/cpp/core.cpp:84:\n"
        "Check 'false' failed at src/frontends/common_translators/src/unconverted_ops_report"
        ".cpp:151:\nFrontEnd API failed with OpConversionFailure:\nModel wasn't fully "
        "converted.\nSummary:\n-- No conversion rule found for operations: Det-17\n\n"
    )
    assert meaningful_line(openvino) == (
        "RuntimeError: Model wasn't fully converted. "
        "No conversion rule found for operations: Det-17"
    )
    assert meaningful_line("ValueError: boom\nmore") == "ValueError: boom"
    assert meaningful_line("worker killed by SIGSEGV; stderr tail:\nx") == (
        "worker killed by SIGSEGV; stderr tail:"
    )
    assert meaningful_line(None) == "" and meaningful_line("\n\nlate") == "late"


def test_compare_md_from_hostile_runs_has_no_injected_heading() -> None:
    import numpy as np

    from bench.comparison import Run, compare
    from bench.gate import gate
    from bench.report.compare_report import markdown_comparison

    def run(name: str, medians: list[float]) -> Run:
        record = {
            "schema_version": 3, "kind": "cell", "model": "m\n# Injected model",
            "backend": "ort-cpu`|", "exporter": "auto", "opset_requested": 17,
            "opset_actual": 17, "batch_size": 1, "precision": "fp32", "mode": "latency",
            "status": "ok", "export": {"sha256": "a"},
            "latency": {"inference": {
                "center_us": float(np.exp(np.mean(np.log(medians)))),
                "trials": [{"index": i, "median_us": m, "used": True}
                           for i, m in enumerate(medians)]}},
            "parity": {"passed": True, "outputs": [{"max_abs_err": 1e-6}]},
        }  # fmt: skip
        return Run(name, [record], {"cpu_model": name + "\n## Injected cpu"})

    base = run("base\n# Injected baseline", [100.0, 101.0, 99.0, 100.5, 100.2])
    slow = run("new <script>", [150.0, 151.0, 149.0, 150.5, 150.2])
    result = compare([base, slow])
    md = markdown_comparison(result, gate(result, 5.0))
    assert not [line for line in md.splitlines() if re.match(r"#+ Injected", line)]
    assert md.startswith("# bench compare: baseline base # Injected baseline\n")
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "ort-cpu\\`\\|" in md


def test_empty_and_blank_cells_stay_empty() -> None:
    # An attacker's find: every empty note cell was written as a stray backslash.
    assert md_cell("") == "" and md_cell("   ") == "" and md_text("") == ""
