"""--profile: each runtime's profiler read into one schema, findings, the trace format,
record validation, reports, compare per op type, hostile flags, and real profiled runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST_TIMING

from bench.backends.base import NodeTime, RawProfile
from bench.backends.profiling import ort_nodes, ov_nodes, ov_precision
from bench.compare_ops import cell_ops, op_type_changes
from bench.comparison import Run
from bench.profiles import op_family, safe_name, summarise, trace_document, trace_problems
from bench.report.compare_ops_report import markdown_ops, terminal_ops
from bench.report.profile_report import html_profiles, markdown_profiles, profile_chart
from bench.results import read_records
from bench.validate_profile import profile_problem


def _ort_event(name: str, op: str, ts: float, dur: float, provider: str = "CPUExecutionProvider",
               dtype: str = "float") -> dict:  # fmt: skip
    return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur, "ph": "X",
            "pid": 1, "tid": 1, "args": {"op_name": op, "provider": provider,
                                         "output_type_shape": [{dtype: [1, 4]}],
                                         "thread_scheduling_stats": {"x": 1}}}  # fmt: skip


def _ort_events() -> list[dict]:
    events = []
    for run, start in enumerate((0, 100, 200)):  # run 0 is the warm-up
        events.append({"cat": "Session", "name": "model_run", "ts": start, "dur": 50, "ph": "X"})
        events.append(_ort_event("conv", "Conv", start + 1, 30 + run))
        events.append(_ort_event("ReorderOutput", "ReorderOutput", start + 32, 4))
        events.append({**_ort_event("conv", "Conv", start + 1, 1), "name": "conv_fence_before"})
    return events


def test_ort_nodes_keep_the_last_runs_and_read_providers_and_types() -> None:
    nodes, trace, run_us = ort_nodes(_ort_events(), 2, {"conv"})
    by_name = {n.name: n for n in nodes}
    assert set(by_name) == {"conv", "ReorderOutput"}  # fences and the warm-up run left out
    assert by_name["conv"].total_us == 31 + 32 and by_name["conv"].runs == 2
    assert by_name["conv"].precision == "fp32" and by_name["conv"].inserted is False
    assert by_name["ReorderOutput"].inserted is True
    assert run_us == [50.0, 50.0]
    assert trace[0]["ts"] == 0  # rebased to the first profiled run
    assert all("thread_scheduling_stats" not in e.get("args", {}) for e in trace)
    assert trace_problems(trace_document(RawProfile("t", 2, nodes, trace), "c")) == []


def test_openvino_exec_types_name_kernels_and_precisions() -> None:
    assert ov_precision("brgconv_avx512_amx_bf16") == "bf16"
    assert ov_precision("jit_avx2_f32") == "fp32"
    assert ov_precision("ref_any_I8") == "int8"
    assert ov_precision("undef") == ""
    per_run = [[("in_abcd_acdb", "Reorder", "jit_uni_f32", 4.0), ("conv", "Convolution",
                "brgconv_avx512_amx_bf16", 20.0), ("mvn", "MVN", "ref_any_f32", 6.0)]] * 2  # fmt: skip
    nodes, trace = ov_nodes(per_run, {"conv", "mvn"})
    assert [n.inserted for n in nodes] == [True, False, False]
    assert trace_problems(trace_document(RawProfile("ov", 2, nodes, trace), "c")) == []
    block, full = summarise(RawProfile("ov", 2, nodes, trace), "fp32", 32.0, "cpu")
    kinds = {f["kind"]: f for f in block["findings"]}
    assert set(kinds) == {"precision", "reference_kernel", "layout_conversion"}
    assert kinds["precision"]["nodes"] == ["conv"] and "bf16" in kinds["precision"]["message"]
    assert kinds["reference_kernel"]["nodes"] == ["mvn"]
    assert kinds["layout_conversion"]["nodes"] == ["in_abcd_acdb"]
    assert block["node_sum_us"] == pytest.approx(30.0)
    assert sum(o["share"] for o in block["op_types"]) == pytest.approx(1.0)
    assert block["op_types"][0]["op_type"] == "Convolution"
    assert len(full["nodes"]) == 3 and profile_problem(block) is None


def test_cuda_session_findings_and_the_overhead_explained() -> None:
    nodes = [NodeTime("conv", "Conv", 80.0, 1, device="CUDAExecutionProvider", precision="fp32"),
             NodeTime("nms", "NonMaxSuppression", 10.0, 1, device="CPUExecutionProvider"),
             NodeTime("copy", "MemcpyToHost", 10.0, 1, device="CPUExecutionProvider")]  # fmt: skip
    block, _ = summarise(RawProfile("ort", 1, nodes), "fp32", 200.0, "cuda")
    kinds = {f["kind"]: f for f in block["findings"]}
    assert kinds["cpu_fallback"]["nodes"] == ["nms"] and kinds["copy"]["nodes"] == ["copy"]
    assert block["overhead_us"] == pytest.approx(100.0) and block["coverage"] == 0.5
    assert "outside any node" in kinds["overhead"]["message"]
    cpu_block, _ = summarise(RawProfile("ort", 1, nodes), "fp32", 105.0, "cpu")
    assert {f["kind"] for f in cpu_block["findings"]} == {"copy"}  # within 15%: no note
    over, _ = summarise(RawProfile("ort", 1, nodes), "fp32", 50.0, "cpu")
    assert "profiler's own cost" in over["findings"][-1]["message"]


def test_op_families_and_file_names() -> None:
    assert {op_family(o) for o in ("Conv", "Convolution", "aten::mkldnn_convolution")} == {"conv"}
    assert op_family("aten::addmm") == op_family("FullyConnected") == "matmul"
    assert op_family("Reorder") == op_family("Transpose") == "layout"
    assert op_family("Frobnicate") == "other"
    assert op_family("Convert") == op_family("Cast") == "convert"
    assert safe_name("m/ort-cpu/dynamo-op18/b1/fp32") == "m__ort-cpu__dynamo-op18__b1__fp32"
    assert "/" not in safe_name("../../etc/passwd") and not safe_name("..x").startswith(".")


@pytest.mark.parametrize("document, problem", [
    ([], "traceEvents"),
    ({"traceEvents": [{"ph": "X", "ts": 0, "dur": -1, "name": "n"}]}, "dur"),
    ({"traceEvents": [{"ph": "Q", "ts": 0}]}, "unknown phase"),
    ({"traceEvents": [{"ph": "X", "ts": "0", "dur": 1, "name": "n"}]}, "ts"),
    ({"traceEvents": [{"ph": "X", "ts": 0, "dur": 1}]}, "name"),
    ({"traceEvents": [{"ph": "X", "ts": 0, "dur": 1, "name": "n", "pid": [1]}]}, "pid"),
])  # fmt: skip
def test_trace_checker_names_what_breaks_the_format(document: object, problem: str) -> None:
    assert any(problem in p for p in trace_problems(document))


def _record(backend: str, ops: dict[str, float], run: str = "r", **extra: object) -> dict:
    total = sum(ops.values())
    op_types = [{"op_type": k, "family": op_family(k), "time_us": v, "share": v / total,
                 "nodes": 1, "kernels": [], "precisions": ["fp32"], "devices": ["cpu"]}
                for k, v in sorted(ops.items(), key=lambda kv: -kv[1])]  # fmt: skip
    nodes = [{"name": f"{k} <b>|x", "op_type": k, "family": op_family(k), "time_us": v,
              "share": v / total, "kernel": "k", "precision": "fp32", "device": "cpu",
              "runs": 2, "inserted": False} for k, v in ops.items()]  # fmt: skip
    profile = {"tool": "t", "runs": 2, "node_sum_us": total, "unprofiled_us": total * 1.1,
               "profiled_run_us": None, "overhead_us": total * 0.1, "overhead_share": 0.09,
               "coverage": 0.91, "op_types": op_types, "top_nodes": nodes,
               "findings": [{"kind": "overhead", "message": "m <i>", "nodes": [],
                             "time_us": 1.0, "share": 0.1}],
               "file": "profiles/x.json", "trace_file": "profiles/x.trace.json", "error": None,
               "wall_s": 0.1}  # fmt: skip
    return {"schema_version": 5, "run_id": run, "cell_id": f"m/{backend}/b1", "model": "m",
            "backend": backend, "device": "cpu", "status": "ok", "kind": "cell",
            "exporter": "dynamo", "opset_requested": 18, "batch_size": 1, "dims": {},
            "precision": "fp32", "mode": "latency", "profile": profile, **extra}  # fmt: skip


def test_compare_names_the_op_types_that_changed() -> None:
    base = _record("ort-cpu", {"Conv": 50.0, "Gemm": 10.0, "ReorderOutput": 5.0, "Reshape": 0.5})
    other = _record("ort-cpu", {"Conv": 90.0, "Relu": 12.0, "Gemm": 10.5, "Reshape": 0.9})
    ops = cell_ops(base, other, "b")
    assert ops is not None
    verdicts = {c.op_type: c.verdict for c in ops.changes}
    assert verdicts == {"Conv": "slower", "Relu": "new", "ReorderOutput": "gone",
                        "Gemm": "unchanged", "Reshape": "unchanged"}  # fmt: skip
    assert ops.summary().startswith("Conv 1.80x, Relu new, ReorderOutput gone")
    found = op_type_changes([Run("a", [base], {}), Run("b", [other], {})])
    assert len(found) == 1
    text = "\n".join(markdown_ops(found))
    assert "| Conv | conv | 50.0 | 90.0 | 1.80x" in text
    assert "Relu" in terminal_ops(found) and "Gemm" not in terminal_ops(found)
    unprofiled = {**other, "profile": None}
    assert op_type_changes([Run("a", [base], {}), Run("b", [unprofiled], {})]) == []


def test_reports_show_op_types_families_and_escape_node_names() -> None:
    records = [_record("ort-cpu", {"Conv": 50.0, "Gemm": 10.0}),
               _record("openvino", {"Convolution": 40.0, "FullyConnected": 20.0})]  # fmt: skip
    md = "\n".join(markdown_profiles(records))
    assert "Conv 83% · Gemm 17%" in md and "Convolution 67% · FullyConnected 33%" in md
    assert "| m | 1 | conv | 40.0 | 50.0 |" in md  # families side by side, backends sorted
    assert "<i>" not in md
    html = html_profiles(records)
    assert "&lt;b&gt;" in html and "<b>|x" not in html and "Top nodes" in html
    assert profile_chart(records) is not None
    assert markdown_profiles([{**records[0], "profile": None}]) == []


def test_damaged_profile_blocks_are_skipped_and_old_records_upgrade(tmp_path: Path) -> None:
    good = _record("ort-cpu", {"Conv": 1.0})
    bad = [_record("ort-cpu", {"Conv": 1.0}) for _ in range(4)]
    bad[0]["profile"] = "fast"
    bad[1]["profile"]["op_types"][0]["time_us"] = "inf"
    bad[2]["profile"]["findings"] = [{"kind": 3, "message": "m"}]
    bad[3]["profile"]["top_nodes"] = [None]
    old = {k: v for k, v in good.items() if k != "profile"} | {"schema_version": 4}
    lines = [json.dumps(r) for r in (good, *bad, old)]
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    from bench.results import scan_records, upgrade_record

    records, unreadable = scan_records(tmp_path / "results.jsonl")
    assert [u.line for u in unreadable] == [2, 3, 4, 5]
    assert "profile" in unreadable[0].reason
    upgraded = upgrade_record(records[-1][1])
    assert upgraded["profile"] is None and upgraded["schema_version"] == 5


def _bench(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True,
                          text=True, env=env, timeout=600)  # fmt: skip


@pytest.mark.parametrize("flags, message", [
    (["--profile", "--profile-runs", "0"], "--profile-runs must be >= 1, got 0"),
    (["--profile", "--profile-runs", "99999999"], "--profile-runs must be <= 10000"),
    (["--profile-runs", "5"], "--profile-runs needs --profile"),
    (["--profile", "--profile-runs", "x"], "--profile-runs: invalid int value"),
])  # fmt: skip
def test_bad_profile_flags_are_one_line(flags, message, bench_env, tmp_path) -> None:
    done = _bench(["run", "--models", "simple_cnn", "--backends", "ort-cpu", *flags,
                   "--out", str(tmp_path / "r")], bench_env)  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2  # argparse adds its usage line


@pytest.mark.slow
def test_profiled_run_on_every_cpu_runtime(bench_env, tmp_path) -> None:
    out = tmp_path / "run"
    done = _bench(["run", "--models", "simple_cnn", "--backends", "ort-cpu,openvino,torch",
                   "--opsets", "18", "--batch-sizes", "2", "--no-control", "--profile",
                   "--profile-runs", "3", "--out", str(out), *FAST_TIMING], bench_env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = read_records(out)
    assert {r["backend"] for r in records} == {"ort-cpu", "openvino", "torch"}
    for record in records:
        profile = record["profile"]
        assert profile["error"] is None and profile["runs"] == 3, record["cell_id"]
        assert profile["op_types"] and profile["node_sum_us"] > 0
        assert profile["unprofiled_us"] == record["latency"]["inference"]["center_us"]
        assert (out / profile["file"]).is_file()
        trace = json.loads((out / profile["trace_file"]).read_text())
        assert trace_problems(trace) == [] and trace["traceEvents"]
    families = {r["backend"]: {o["family"] for o in r["profile"]["op_types"]} for r in records}
    assert all("conv" in f for f in families.values())
    assert "Where the time goes" in (out / "report.md").read_text()
    plain = tmp_path / "plain"
    done = _bench(["run", "--models", "simple_cnn", "--backends", "ort-cpu", "--no-baseline",
                   "--opsets", "18", "--batch-sizes", "1", "--no-control", "--out", str(plain),
                   *FAST_TIMING], bench_env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert read_records(plain)[0]["profile"] is None and not (plain / "profiles").exists()


def test_a_run_the_scheduler_interrupted_does_not_move_the_median() -> None:
    nodes = [NodeTime("conv", "Conv", 5061.0, 3, samples_us=[30.0, 31.0, 5000.0]),
             NodeTime("gemm", "Gemm", 20.0, 2, samples_us=[10.0, 10.0])]  # fmt: skip
    block, _ = summarise(RawProfile("ort", 3, nodes), "fp32", 50.0, "cpu")
    times = {o["op_type"]: o["time_us"] for o in block["op_types"]}
    assert times == {"Conv": 31.0, "Gemm": 10.0}  # gemm ran 2 of 3 runs: median of 10, 10, 0


def test_profile_block_writes_files_or_says_why_not(tmp_path: Path) -> None:
    from bench.jobs import Failure, ProfileOutcome
    from bench.profilepass import profile_block

    raw = RawProfile("ort", 1, [NodeTime("conv", "Conv", 10.0, 1)], [{"ph": "X", "ts": 0,
                     "dur": 10.0, "name": "conv", "pid": 1, "tid": 1}])  # fmt: skip
    block = profile_block(ProfileOutcome(raw, 0.5), "m/ort-cpu/b1", "fp32", "cpu", 12.0, tmp_path)
    assert block["error"] is None and block["wall_s"] == 0.5
    assert block["file"] == "profiles/m__ort-cpu__b1.json"
    trace = json.loads((tmp_path / block["trace_file"]).read_text())
    assert trace_problems(trace) == [] and trace["otherData"]["cell_id"] == "m/ort-cpu/b1"
    failed = profile_block(Failure("crashed", "profiling: worker died (SIGSEGV)"), "c", "fp32",
                           "cpu", 12.0, tmp_path)  # fmt: skip
    assert failed["error"] == "profiling: worker died (SIGSEGV)" and failed["op_types"] == []
    assert profile_problem(failed) is None
    none = profile_block(ProfileOutcome(None, 0.0), "c", "fp32", "cpu", 12.0, tmp_path)
    assert "no profiler" in none["error"]
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "profiles").write_text("a file where the folder should be")
    unwritten = profile_block(ProfileOutcome(raw, 0.5), "c", "fp32", "cpu", 12.0, tmp_path / "ro")
    assert unwritten["error"].startswith("profile files not written") and unwritten["op_types"]
