"""Reports from checked-in runs: Markdown, CSV, HTML (escaping), and a real browser."""

from __future__ import annotations

import ast
import copy
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.report import write_reports
from bench.report.frame import summary_frame
from bench.report.html_report import html_report
from bench.report.markdown import markdown_report
from bench.report.ranking import rank
from bench.results import read_json, read_records

DATA = Path(__file__).parent / "data"
RUN = DATA / "run_default_threads"


@pytest.fixture
def records() -> list[dict]:
    return read_records(RUN)


@pytest.fixture
def env() -> dict:
    return read_json(RUN / "env.json")


def test_markdown_report_sections(records, env) -> None:
    md = markdown_report(records, env)
    short, details = md.split("<details>")
    for heading in ("## Headline: fastest backend that passed parity", "## Latency"):
        assert heading in short
    for heading in ("## Latency, all statistics", "## Accuracy against the reference (torch eager fp32)",
                    "## Stability warnings", "## Environment", "## Reproduce"):  # fmt: skip
        assert heading in details and heading not in short
    assert details.rstrip().endswith("</details>")
    assert "parity: 6 of 6 measured cells pass" in short
    assert "python -m bench run" in details
    # these runs measured one loop per cell: every interval says so
    assert "[12.1–12.1]¹" in short and "¹ one trial only" in short


def test_failed_parity_never_wins_the_headline(records) -> None:
    bad = copy.deepcopy(records)
    ort = next(r for r in bad if r["backend"] == "ort-cpu" and r["batch_size"] == 1)
    ort["status"] = "parity_failed"
    ort["latency"]["inference"]["p50_us"] = 1e-3  # absurdly fast, and wrong
    row = next(r for r in rank(bad) if r.batch_size == 1)
    assert row.fastest is not None and row.fastest.backend != "ort-cpu"
    assert row.faster_but_wrong == ("ort-cpu",)
    md = markdown_report(bad, {})
    assert "❌ FAIL" in md and "faster but failed parity" in md


def test_one_cell_label_everywhere(records) -> None:
    from bench.report.charts import distribution_chart, latency_chart
    from bench.report.compare_report import key_label
    from bench.report.format import cell_label, export_label

    ort = copy.deepcopy(next(r for r in records if r["backend"] == "ort-cpu"))
    ort.update(exporter="auto", exporter_used="torchscript", opset_requested=13, opset_actual=13)
    assert export_label(ort) == "torchscript op13"
    assert cell_label(ort) == "simple_cnn · ort-cpu · torchscript op13 · b1 · fp32"
    assert export_label({**ort, "exporter_used": "dynamo", "opset_actual": 18}) == (
        "dynamo op18 (asked op13)"
    )
    # the export object alone is enough (records written before the top-level copies)
    bare = {k: v for k, v in ort.items() if k not in ("exporter_used", "opset_actual")}
    bare["export"] = {**ort["export"], "exporter_used": "torchscript", "opset_actual": 13}
    assert export_label(bare) == "torchscript op13"
    assert export_label(next(r for r in records if r["backend"] == "torch")) == "eager"
    assert key_label(("m", "ort-cpu", "auto", 17, 8, (("seq", 64),), "fp32", "latency")) == (
        "m · ort-cpu · auto op17 · b8 seq=64 · fp32"
    )
    md = markdown_report([ort], {})
    assert "torchscript op13" in md and "auto op13" not in md and "auto-op13" not in md
    assert [t.name for t in distribution_chart([ort]).data] == [cell_label(ort)]
    (trace,) = latency_chart(summary_frame([ort])).data
    assert trace.name == "ort-cpu · torchscript op13 · fp32"


def test_html_escapes_every_string(records, env) -> None:
    evil = copy.deepcopy(records)
    for r in evil:
        r["model"] = "<script>alert('model')</script>"
        r["reason"] = "<img src=x onerror=alert(1)>"
    env = {**env, "cpu_model": "<b>cpu</b>", "command": ["bench", "<script>x</script>"]}
    page = html_report(evil, env)
    assert "<script>alert('model')</script>" not in page
    assert "&lt;script&gt;alert(&#x27;model&#x27;)&lt;/script&gt;" in page
    assert "<b>cpu</b>" not in page and "<img src=x" not in page
    assert page.count("<script") == 1 + 6  # plotly.js once, then one per chart


def test_report_html_is_self_contained(records, env) -> None:
    page = html_report(records, env)
    library_start = page.index("<script type='text/javascript'>")
    library_end = page.index("</script>", library_start)
    assert "plotly" in page[library_start : library_start + 300].lower()
    outside = page[:library_start] + page[library_end:]
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?https?://""", outside)
    assert "cdn.plot.ly" not in outside


def test_older_schema_is_upgraded_and_newer_refused(tmp_path) -> None:
    old = read_records(DATA / "run_schema_v1")
    assert old and all(
        r["schema_version"] == 5
        and r["host"] is None
        and r["profile"] is None
        and r["mode"] == "latency"
        for r in old
    )
    assert all(
        r["kind"] == "cell" and r["latency"]["inference"]["interval_scope"] == "loop" for r in old
    )
    assert "gpu_mb" in old[0]["memory"]
    parity = old[0]["parity"]  # v3 -> v4: allclose decided, nothing else was measured
    assert parity["verdicts"]["deciding"] == "allclose"
    assert parity["verdicts"]["allclose"]["passed"] == parity["passed"]
    assert parity["verdicts"]["noise_floor"]["passed"] is None
    assert parity["attribution"] is None and parity["divergence"] is None
    assert parity["outputs"][0]["floor_ratio"] is None
    newer = tmp_path / "newer"
    newer.mkdir()
    line = json.loads((RUN / "results.jsonl").read_text().splitlines()[0])
    line["schema_version"] = 99
    (newer / "results.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(BenchError, match="schema_version 99; this bench reads versions up to 5"):
        read_records(newer)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
    "--virtual-time-budget=15000",
]  # fmt: skip


def test_report_html_renders_in_headless_chromium(records, env, tmp_path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run must install Debian's chromium")
        pytest.skip("chromium not installed (apt-get install chromium); CI installs it")
    write_reports(tmp_path, records, env)
    url = (tmp_path / "report.html").as_uri()
    proc = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    dom = proc.stdout
    assert "bench report" in dom, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    errors = [line for line in console if "error" in line.lower() or "Uncaught" in line]
    assert not errors, errors
    charts = re.findall(r'<div id="chart-(\d+)"[^>]*class="[^"]*js-plotly-plot', dom)
    assert len(charts) == 6, "every chart div was turned into a plotly plot"
    assert dom.count('class="main-svg"') >= 6  # plotly drew its SVG for each chart


def test_png_charts_through_kaleido(records, env, tmp_path) -> None:
    pytest.importorskip("kaleido", reason="the png extra is not installed")
    if _chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI")
        pytest.skip("chromium not installed")
    paths = write_reports(tmp_path, records, env, png=True)
    pngs = [p for p in paths if p.suffix == ".png"]
    assert len(pngs) == 6
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


REPORT = Path(__file__).resolve().parent.parent / "bench" / "report"
# What each module of bench.report may import from bench.report: layers, no cycles.
ALLOWED_IMPORTS = {
    "format": set(),
    "fields": {"format"},
    "explained": {"format"},
    "bugreport": {"format"},
    "frame": {"format", "fields", "explained"},
    "ranking": {"format", "fields"},
    "tables": {"format", "explained"},
    "charts": {"format", "fields"},
    "html": {"format"},
    "compare_report": {"format", "html"},
    "history_chart": {"format", "html"},
    "compare_ops_report": {"format", "html", "compare_report"},
    "profile_report": {"format", "fields", "html"},
    "notes": {"format", "ranking", "tables"},
    "markdown": {
        "format",
        "fields",
        "frame",
        "ranking",
        "tables",
        "notes",
        "bugreport",
        "profile_report",
    },
    "html_report": {
        "format",
        "fields",
        "frame",
        "ranking",
        "tables",
        "charts",
        "html",
        "notes",
        "bugreport",
        "profile_report",
    },
    "terminal": {"format", "fields", "frame", "tables", "notes"},
    "machines": {"format", "html", "markdown", "html_report"},
    "writer": {"frame", "charts", "markdown", "html_report", "machines"},
    "__init__": {"frame", "terminal", "writer"},
}


def _report_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module == "bench.report":
            names = [f"bench.report.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found |= {n.split(".")[2] for n in names if n.startswith("bench.report.")}
    return found


def test_report_modules_import_downward_only_and_stay_small() -> None:
    modules = {p.stem: p for p in REPORT.glob("*.py")}
    assert set(modules) <= set(ALLOWED_IMPORTS), set(modules) - set(ALLOWED_IMPORTS)
    for name, path in modules.items():
        assert _report_imports(path) <= ALLOWED_IMPORTS[name], name
        assert len(path.read_text().splitlines()) <= 300, name


def test_timing_fields_fall_back_to_older_records(records) -> None:
    from bench.report import fields

    ort = records[0]
    block = ort["latency"]["inference"]
    assert fields.center_us(block) == block["p50_us"]
    assert fields.interval_scope(block) == "loop"  # one loop's interval, before trials
    newer = {**block, "center_us": 11.0, "interval_scope": "trials", "n_trials": 5}
    assert fields.center_us(newer) == 11.0 and fields.interval_scope(newer) == "trials"
    frame = summary_frame([ort, {**ort, "kind": "control", "model": "control"}])
    assert list(frame["model"]) == ["simple_cnn"]  # a control record is not a cell


def _cell(backend: str, center: float, low: float, high: float, **kw) -> dict:
    """A synthetic record in the trial-based layout (center_us, interval_scope, trials)."""
    torch = backend == "torch"
    opset, status = kw.get("opset", 17), kw.get("status", "ok")
    scope = kw.get("scope", "trials")
    trials = [{"index": i, "start_s": float(i), "n": 50, "median_us": center * (1 + 0.01 * i),
               "other_cpu_fraction": 0.0, "contended": False} for i in range(5)]  # fmt: skip
    return {
        "schema_version": 2, "kind": kw.get("kind", "cell"), "model": kw.get("model", "m"),
        "backend": backend, "exporter": None if torch else "auto",
        "exporter_used": None if torch else kw.get("exporter_used", "dynamo"),
        "opset_requested": None if torch else opset, "opset_actual": None if torch else opset,
        "batch_size": kw.get("batch", 1), "precision": "fp32", "dims": {}, "mode": "latency",
        "status": status, "reason": kw.get("reason"),
        "export": None if torch else {"graph_sha256": kw.get("sha"), "sha256": f"{backend}{opset}"},
        "latency": {"inference": {
            "center_us": center, "p50_us": center * 1.01, "ci95_low_us": low, "ci95_high_us": high,
            "p90_us": high, "p99_us": high * 1.2, "n": 250, "interval_scope": scope,
            "n_trials": 5 if scope == "trials" else 1, "trials": trials if scope == "trials" else [],
            "contended_trials": kw.get("contended_trials", 0)}},
        "parity": {"passed": status == "ok", "rtol": 1e-3, "atol": 1e-5,
                   "outputs": [{"max_abs_err": 1e-6 if status == "ok" else 0.5, "tol_ratio": 0.1}]},
        "warnings": kw.get("warnings", []),
    }  # fmt: skip


def test_ranking_overlapping_intervals_are_tied() -> None:
    from bench.report.ranking import rank

    (r,) = rank([_cell("ort-cpu", 11, 10, 12), _cell("openvino", 12, 11, 13),
                 _cell("torch", 41, 40, 42)])  # fmt: skip
    assert r.fastest is None
    assert [c.backend for c in r.tied] == ["ort-cpu", "openvino"]
    assert r.could_differ == pytest.approx(13 / 10 - 1)  # openvino's high over ort's low
    assert r.contenders[0].speedup_vs_torch == pytest.approx(41 / 11)


def test_ranking_disjoint_intervals_name_the_fastest() -> None:
    from bench.report.ranking import rank

    (r,) = rank([_cell("ort-cpu", 10.5, 10, 11), _cell("openvino", 12.5, 12, 13)])
    assert r.fastest is not None and r.fastest.backend == "ort-cpu"
    assert r.tied == () and r.could_differ is None


def test_ranking_compares_each_backends_best_cell() -> None:
    from bench.report.ranking import rank

    slow = _cell("ort-cpu", 30, 29, 31, opset=13, exporter_used="torchscript", sha="a")
    fast = _cell("ort-cpu", 10.5, 10, 11, sha="b")
    (r,) = rank([slow, fast, _cell("openvino", 20, 19, 21)])
    assert r.fastest.backend == "ort-cpu" and r.fastest.exports == ("dynamo op17",)


def test_ranking_never_crowns_a_failed_parity_cell() -> None:
    from bench.report.ranking import rank

    wrong = _cell("openvino", 5, 4.9, 5.1, status="parity_failed")
    (r,) = rank([_cell("ort-cpu", 10.5, 10, 11), wrong, _cell("torch", 41, 40, 42)])
    assert r.fastest.backend == "ort-cpu"
    assert "openvino" not in [c.backend for c in r.contenders]
    assert r.faster_but_wrong == ("openvino",)
    (alone,) = rank([wrong])
    assert alone.fastest is None and alone.tied == () and alone.faster_but_wrong == ("openvino",)


def test_ranking_keeps_identical_graphs_across_opsets_together() -> None:
    from bench.report.ranking import rank

    op13 = _cell("ort-cpu", 10, 9.9, 10.1, opset=13, sha="same")
    op17 = _cell("ort-cpu", 12, 11.9, 12.1, opset=17, sha="same")
    # openvino is clear of op13's interval alone, but not of the graph's two measurements
    (r,) = rank([op13, op17, _cell("openvino", 11.5, 11.4, 11.6)])
    ort = next(c for c in r.contenders if c.backend == "ort-cpu")
    assert ort.exports == ("dynamo op13", "dynamo op17")
    assert ort.export == "dynamo op13 = op17, same graph"
    assert (ort.low_us, ort.high_us) == (9.9, 12.1)
    assert r.fastest is None and {c.backend for c in r.tied} == {"ort-cpu", "openvino"}
    (solo,) = rank([op13, op17])
    assert len(solo.contenders) == 1 and solo.fastest.exports == ("dynamo op13", "dynamo op17")


CUDA_SKIP = "CUDAExecutionProvider is not available (install: pip install -e '.[gpu]')"


def _sweep() -> list[dict]:
    """A one-model sweep as the default run makes it: ort-cpu, openvino (opsets 13, 17, 18),
    torch, ort-cuda skipped, at batch 1, 8, 32 (21 measured cells), plus a control record.
    ort-cpu's opset 17 and 18 files hold the same graph; openvino at batch 8 ran contended."""
    base = {1: 50.0, 8: 210.0, 32: 700.0}
    speed = {"ort-cpu": {1: 4.8, 8: 9.0, 32: 13.0}, "openvino": {1: 2.2, 8: 8.6, 32: 10.0}}
    records = []
    for backend in ("ort-cpu", "ort-cuda", "openvino"):
        for opset in (13, 17, 18):
            for batch in (1, 8, 32):
                center = base[batch] / speed.get(backend, speed["ort-cpu"])[batch]
                center *= 1 + 0.004 * opset % 3
                kw = dict(opset=opset, batch=batch, sha=f"{backend}-{min(opset, 17)}",
                          exporter_used="torchscript" if opset == 13 else "dynamo")  # fmt: skip
                if backend == "openvino" and batch == 8:
                    kw.update(contended_trials=2, warnings=[
                        "other processes used 45% of the CPU in 2 of 5 trials"])  # fmt: skip
                cell = _cell(backend, center, center * 0.97, center * 1.03, **kw)
                if backend == "ort-cuda":
                    cell.update(status="skipped", reason=CUDA_SKIP, latency=None, parity=None)
                records.append(cell)
    for batch in (1, 8, 32):
        records.append(_cell("torch", base[batch], base[batch] * 0.98, base[batch] * 1.02,
                             batch=batch))  # fmt: skip
    control = _cell("control", 1000.0, 990.0, 1012.0, kind="control", model="control")
    return [*records, control]


def test_skipped_cells_collapse_to_one_line_per_backend_and_reason(tmp_path) -> None:
    from bench.report import terminal_table

    sweep = _sweep()
    line = f"ort-cuda: 9 cells skipped — {CUDA_SKIP}"
    md = markdown_report(sweep, {})
    page = html_report(sweep, {})
    terminal = terminal_table(sweep)
    assert md.count(line) == 1 and terminal.count(line) == 1
    assert page.count(html.escape(line, quote=True)) == 1
    assert "| ort-cuda |" not in md and "ort-cuda  " not in terminal
    assert "<td>ort-cuda</td>" not in page
    other = copy.deepcopy(sweep[9])  # a second reason makes a second line
    other.update(batch_size=64, reason="no GPU memory")
    assert "ort-cuda: 1 cell skipped — no GPU memory" in markdown_report([*sweep, other], {})


def test_release_notes_fit_one_screen() -> None:
    md = markdown_report(_sweep(), {"command": ["python", "-m", "bench", "run"]})
    short = md.split("<details>")[0].splitlines()
    assert len(short) <= 50, "\n".join(short)
    latency = short[short.index("## Latency") + 2 :]
    rows = [r for r in latency[2:] if r.startswith("| m |")]
    assert len(rows) == 21  # one compact row per measured cell
    assert latency[0] == (
        "| model | backend | export | batch | median µs [95%] | items/s | vs torch | parity |"
    )
    assert "| m | torch | eager | 1 | 50.0 [49.0–51.0] | 20000 | 1.00× | ✅ pass |" in rows
    assert "¹" not in "\n".join(short)  # intervals between trials need no footnote
    assert "## Accuracy against the reference" in md.split("<details>")[1]


def test_headline_admits_ties_and_flags_contention() -> None:
    md = markdown_report(_sweep(), {})
    page = html_report(_sweep(), {})
    headline = md.split("## Headline")[1].split("## Latency")[0]
    b1, b8, b32 = (line for line in headline.splitlines() if line.startswith("| m |"))
    assert "| ort-cpu (torchscript op13) |" in b1 and "tied" not in b1
    assert "tied: ort-cpu (torchscript op13) and openvino (torchscript op13)" in b8
    assert "could differ by up to 11%" in b8
    assert b8.endswith("| 8.56× / 8.17× ⚠ contended |")  # openvino ran on a busy CPU
    assert "⚠ contended" not in b1 + b32
    assert "⚠ contended: measured while other processes held" in headline
    assert "8.56× / 8.17× ⚠ contended" in page


def test_html_shows_warnings_and_marks_the_cells() -> None:
    page = html_report(_sweep(), {})
    warnings = page[page.index("<h2 id='warnings'>") : page.index("<h2>Latency</h2>")]
    assert "3 cell(s) ran while other processes held the CPU" in warnings
    assert "m · openvino · torchscript op13 · b8 · fp32: other processes used 45%" in warnings
    latency = page[page.index("<h2>Latency</h2>") : page.index("<h2>Accuracy")]
    assert latency.count('<tr class="warn">') == 3
    assert latency.count("<td>⚠ CPU contended</td>") == 3


def test_control_record_is_only_an_environment_line(tmp_path) -> None:
    from bench.report import fields, terminal_table
    from bench.report.charts import run_charts

    sweep = _sweep()
    line = "control workload: center 1000.0 µs [990.0–1012.0], spread between trials 1.6%"
    md = markdown_report(sweep, {})
    assert md.count(line) == 1 and md.index(line) > md.index("## Environment")
    page = html_report(sweep, {})
    assert page.count(line) == 1 and page.index(line) > page.index("<h2>Environment</h2>")
    assert "control" not in md.replace(line, "") and "control" not in terminal_table(sweep).replace(
        line, ""
    )
    assert all(r.model != "control" for r in rank(sweep))
    block = sweep[-1]["latency"]["inference"]
    assert fields.trial_spread({**block, "trial_spread": 0.07}) == 0.07  # as the runner wrote it
    retried = [{**t, "used": False, "median_us": 5000.0} for t in block["trials"][:1]]
    assert fields.trial_spread({**block, "trials": block["trials"] + retried}) == pytest.approx(
        fields.trial_spread(block)
    )  # a contended trial that was retried does not count
    names = [t.name or "" for fig in run_charts(summary_frame(sweep), sweep) for t in fig.data]
    assert names and not any("control" in n for n in names)


def test_same_graph_across_opsets_is_noted() -> None:
    md = markdown_report(_sweep(), {})
    assert "| m | ort-cpu | dynamo op17 (same graph as op18) | 1 |" in md
    assert "| m | ort-cpu | torchscript op13 | 1 |" in md  # another graph: no note
    frame = summary_frame(_sweep())
    notes = frame.set_index(["backend", "opset_requested", "batch_size"])["same_graph"]
    assert notes[("openvino", 18, 32)] == "same graph as op17"


def test_speedup_chart_reads_at_every_batch_size() -> None:
    from bench.report.charts import speedup_chart

    fig = speedup_chart(summary_frame(_sweep()))
    axis = fig.layout.yaxis
    assert axis.type == "log"
    assert 1 in axis.tickvals and "1×" in axis.ticktext and "10×" in axis.ticktext
    low, high = (10**v for v in axis.range)
    values = summary_frame(_sweep())["speedup_vs_torch"].dropna()
    assert low < min(values.min(), 1) and high > values.max()
    for trace in fig.data:  # bars grow from 1× (torch) up or down
        assert set(trace.base) == {1.0}
        assert [b + y for b, y in zip(trace.base, trace.y, strict=True)] == pytest.approx(
            trace.customdata
        )


def test_throughput_mode_cells_say_so_and_rank_per_item() -> None:
    from bench.report.charts import cold_start_chart

    tput = _cell("openvino", 400, 390, 410, batch=8)
    tput["mode"] = "throughput"
    tput["throughput"] = tput.pop("latency")["inference"]
    tput["throughput"].update(requests=4, inferences_per_round=16, items_per_s_wall=300000.0)
    lat = _cell("openvino", 30, 29, 31, batch=8)
    md = markdown_report([lat, tput], {})
    assert "| m | openvino | dynamo op17 | 8 throughput | 400.0 [390.0–410.0] | 300000 |" in md
    ranked = {r.mode: r for r in rank([lat, tput])}  # modes are never ranked together
    assert ranked["throughput"].fastest.per_item(400) == pytest.approx(400 / (8 * 16))
    assert "— the only backend that passed parity" in md
    cold = [{**lat, "cold_start": {"load_s": 0.01, "first_run_ms": 1.0}}]
    assert list(cold_start_chart(summary_frame(cold)).data[0].x) == [
        "openvino · dynamo op17 · b8 · fp32"
    ]


def test_noisy_runs_read_plainly_and_in_a_stable_order() -> None:
    from bench.report.format import fmt
    from bench.report.notes import differ_text

    assert [differ_text(x) for x in (0.004, 0.113, 0.996, 2.4, 149.0, 6e16, None)] == [
        "could differ by up to 0.4%", "could differ by up to 11%", "could differ by up to 100%",
        "could differ by up to 3.4×", "could differ by up to 150×",
        "could differ more than 1000-fold", "no interval to tell them apart",
    ]  # fmt: skip
    assert fmt(279677293859188384.0) == "2.8e+17" and fmt(12.34) == "12.3"
    shuffled = _sweep()[::-1]  # interleaved trials finish cells in any order
    frame = summary_frame(shuffled)
    assert list(frame["backend"].unique()) == ["openvino", "ort-cpu", "ort-cuda", "torch"]
    first = frame[frame["backend"] == "openvino"].head(3)
    assert list(first["batch_size"]) == [1, 8, 32] and set(first["opset_requested"]) == {13}


def test_ranking_is_decided_against_the_runner_up() -> None:
    from bench.report.ranking import rank

    wild = _cell("torch", 1700, 1.2, 2.4e6)  # three contended trials: an interval of nothing
    (r,) = rank([_cell("ort-cpu", 53, 45, 63), _cell("openvino", 110, 76, 161), wild])
    assert r.fastest is not None and r.fastest.backend == "ort-cpu"
    (r,) = rank([_cell("ort-cpu", 152, 122, 190), _cell("openvino", 262, 136, 504), wild])
    assert [c.backend for c in r.tied] == ["ort-cpu", "openvino"]  # torch is far from both
    assert r.could_differ == pytest.approx(504 / 122 - 1)
    close = _cell("torch", 11.5, 10.5, 12.5)  # centered inside the leader's interval: tied too
    (r,) = rank([_cell("ort-cpu", 11, 10, 12), _cell("openvino", 11.2, 10.2, 12.2), close])
    assert [c.backend for c in r.tied] == ["ort-cpu", "openvino", "torch"]


def test_comparison_chart_draws_every_verdict() -> None:
    from bench.comparison import CellComparison, Comparison
    from bench.report.compare_report import comparison_chart

    def cell(backend: str, verdict: str) -> CellComparison:
        key = ("m", backend, "auto", 17, 1, (), "fp32", "latency")
        return CellComparison(key=key, other="new", base_median_us=10.0, other_median_us=11.0,
                              ratio=1.1, ratio_low=0.9, ratio_high=1.3, p_value=0.2,
                              verdict=verdict, comparable=True, not_comparable_reason=None,
                              parity_drift=None, base_status="ok", other_status="ok")  # fmt: skip

    verdicts = ["slower", "unchanged", "cannot resolve", "not significant"]
    comparison = Comparison(
        "base", ["new"], cells=[cell(f"b{i}", v) for i, v in enumerate(verdicts)]
    )
    fig = comparison_chart(comparison)
    assert sorted(t.name for t in fig.data) == sorted(verdicts)
