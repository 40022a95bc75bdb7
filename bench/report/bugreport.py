"""A failed cell written as a bug report for the tracker of whoever is at fault: the runtime,
the exporter, or nobody (an ill-conditioned model). Pure over a record and env.json; used by
report.md's failures section and by `bench explain`."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from bench.report.format import cell_label, export_label, fmt, md_code, md_table, md_text

Record = Mapping[str, Any]
#: report.md writes out at most this many bug reports; the rest are one line each above.
MAX_BUG_REPORTS = 5


def _e(value: Any) -> str:
    return fmt(value, ".2e")


def report_to(record: Record, env: Mapping[str, Any]) -> str:
    """Whose tracker the report belongs in, from the attribution."""
    parity = record.get("parity") or {}
    cause = (parity.get("attribution") or {}).get("cause")
    runtime = (record.get("settings") or {}).get("runtime") or record.get("backend")
    versions = env.get("versions") or {}
    if cause in ("runtime", "precision"):
        return f"{runtime} (the runtime behind backend `{record.get('backend')}`)"
    if cause == "export":
        exporter = record.get("exporter_used") or record.get("exporter") or "the exporter"
        return (f"torch.onnx, the {exporter} exporter (torch {versions.get('torch', '?')}, "
                f"onnx {versions.get('onnx', '?')}), opset {record.get('opset_actual')}")  # fmt: skip
    if cause == "model":
        return "nobody: the model itself is ill-conditioned at fp32 (see the noise floor)"
    if record.get("status") == "ok":
        return "nobody: the cell passes"
    return "undetermined (no attribution)"


def title(record: Record) -> str:
    if record.get("status") == "ok":
        return f"passes parity (explained on request): {cell_label(record)}"
    cause = ((record.get("parity") or {}).get("attribution") or {}).get("cause") or "parity"
    runtime = (record.get("settings") or {}).get("runtime") or record.get("backend")
    what = {"export": "the ONNX export disagrees with PyTorch",
            "model": "outputs differ beyond tolerance on an ill-conditioned model",
            "precision": f"{runtime} computes in a lower precision than fp32",
            }.get(cause, f"{runtime} gives wrong outputs")  # fmt: skip
    return f"{what}: {cell_label(record)}"


def divergence_text(divergence: Mapping[str, Any] | None) -> str:
    """`node_Conv_3` (Conv), node 4 of 15: error ...; inputs: ... (Markdown, values escaped)"""
    if not divergence:
        return "not searched"
    status = divergence.get("status")
    if status == "found":
        node = divergence["node"]
        inputs = ", ".join(
            f"{md_code(i['name'])} ({md_text(i['from'])}) {_e(i['error'])}" for i in node["inputs"]
        )
        return (f"node {md_code(node['name'])} ({md_text(node['op_type'])}), {node['index'] + 1} of "
                f"{divergence.get('nodes')} in topological order: error {_e(node['error'])} of the "
                f"tensor's scale against {md_text(divergence.get('reference'))} (threshold "
                f"{_e(divergence.get('threshold'))}); its inputs: {inputs or 'none'}")  # fmt: skip
    if status == "not_found":
        return (f"no intermediate tensor of the {divergence.get('nodes')} nodes exceeds "
                f"{_e(divergence.get('threshold'))} against {md_text(divergence.get('reference'))}: the "
                "backend follows the file node by node")  # fmt: skip
    if status == "stopped":
        return f"stopped at its bound ({divergence.get('bound')}) before a node exceeded it"
    return md_text(f"{status}: {divergence.get('reason') or ''}")


def error_rows(record: Record) -> tuple[list[str], list[list[str]]]:
    parity = record.get("parity") or {}
    evidence = (parity.get("attribution") or {}).get("evidence") or {}
    headers = ["output", "noise floor (PyTorch fp32 vs fp64)", "backend vs fp64", "× floor",
               "backend vs PyTorch fp32", "file, no optimisations, vs fp64", "allclose"]  # fmt: skip
    rows = []
    for out in parity.get("outputs") or []:
        found = evidence.get(out["name"]) or {}
        rows.append([out["name"], _e(out.get("noise_floor")), _e(out.get("err_vs_fp64")),
                     _ratio(out.get("floor_ratio")), _e(out.get("err_vs_fp32")),
                     _e(found.get("file_vs_fp64")), "pass" if out.get("passed") else "FAIL"])  # fmt: skip
    return headers, rows


def bug_report(record: Record, env: Mapping[str, Any], run_dir: str = "RUN_DIR") -> str:
    """Markdown for one failed cell: title, whose fault, where it starts, the errors, the
    environment and how to reproduce."""
    parity = record.get("parity") or {}
    attribution = parity.get("attribution") or {}
    verdicts = parity.get("verdicts") or {}
    settings = record.get("settings") or {}
    export = record.get("export") or {}
    versions = env.get("versions") or {}
    consistency = parity.get("batch_consistency") or {}
    t = md_text  # every value below may hold text a user or a runtime chose: shown literally
    lines = [f"### {t(title(record))}", ""]
    lines.append(f"- **Report to:** {t(report_to(record, env))}")
    lines.append(f"- **Whose fault:** {t(attribution.get('cause') or 'not attributed')} — "
                 f"{t(attribution.get('summary') or record.get('reason') or '')}")  # fmt: skip
    lines.append(f"- **Where it starts:** {divergence_text(parity.get('divergence'))}")
    lines.append(f"- **Verdicts:** allclose rtol={fmt(parity.get('rtol'), 'g')} "
                 f"atol={fmt(parity.get('atol'), 'g')} "
                 f"{_word((verdicts.get('allclose') or {}).get('passed'))}; noise floor "
                 f"(≤ {fmt((verdicts.get('noise_floor') or {}).get('k'), 'g')}× PyTorch fp32's own "
                 f"error) {_word((verdicts.get('noise_floor') or {}).get('passed'))}; deciding: "
                 f"{t(verdicts.get('deciding'))} ({t(verdicts.get('why'))})")  # fmt: skip
    if consistency.get("checked"):
        items = ", ".join(map(str, consistency.get("items") or []))
        state = "match their rows" if consistency.get("passed") else "DIFFER from their rows"
        lines.append(f"- **Batch consistency:** items {t(items)} run alone {state} in the batch")
    runtime = settings.get("runtime") or record.get("backend")
    lines.append(f"- **Environment:** {t(runtime)} ({t(_settings(settings))}); torch "
                 f"{t(versions.get('torch', '?'))}, onnx {t(versions.get('onnx', '?'))}; export "
                 f"{t(export_label(record))}; CPU {t(env.get('cpu_model') or '?')}")  # fmt: skip
    command = shlex.join(["python", "-m", "bench", "explain", str(run_dir),
                          str(record.get("cell_id"))])  # fmt: skip
    file = f"ONNX file {t(export.get('path'))} (sha256 {t(str(export.get('sha256'))[:12])})"
    lines.append(f"- **Reproduce:** {t(command)}" + (f"; {file}" if export.get("path") else ""))
    lines += ["", md_table(*error_rows(record)), ""]
    lines.append("Errors are normwise: max |error| / max |truth| over the output, worst over the "
                 "input batches; the noise floor is PyTorch fp32's own error against fp64.")  # fmt: skip
    return "\n".join(lines)


def _ratio(value: Any) -> str:
    if value is None or isinstance(value, str):
        return str(value or "–")
    return f"{value:.0f}" if value >= 100 else f"{value:.2g}"


def _word(passed: Any) -> str:
    return "–" if passed is None else ("pass" if passed else "FAIL")


def _settings(settings: Mapping[str, Any]) -> str:
    keys = ("precision", "providers", "graph_optimization_level", "intra_op_num_threads",
            "INFERENCE_NUM_THREADS", "threads")  # fmt: skip
    return ", ".join(f"{k}={settings[k]}" for k in keys if settings.get(k)) or "no settings read"


def bug_reports(records: Sequence[Record], env: Mapping[str, Any], run_dir: str = "RUN_DIR"
                ) -> list[str]:  # fmt: skip
    """report.md's bug reports: one per cell that failed parity (at most MAX_BUG_REPORTS)."""
    failed = failed_records(records)
    if not failed:
        return []
    parts = ["", "## Bug reports (cells that failed parity)", "",
             "Each is ready to paste into the tracker of whoever is at fault."]  # fmt: skip
    for record in failed[:MAX_BUG_REPORTS]:
        parts += ["", bug_report(record, env, run_dir)]
    if len(failed) > MAX_BUG_REPORTS:
        parts += ["", f"{len(failed) - MAX_BUG_REPORTS} more: `python -m bench explain "
                  f"{run_dir} CELL_ID` writes the report of any cell."]  # fmt: skip
    return parts


def failed_records(records: Sequence[Record]) -> list[Record]:
    """The cells that failed parity, in cell-id order."""
    failed = [r for r in records if r.get("status") == "parity_failed" and r.get("parity")]
    return sorted(failed, key=lambda r: str(r.get("cell_id")))


def html_bug_reports(records: Sequence[Record], env: Mapping[str, Any]) -> str:
    """report.html's bug reports: each one's Markdown, collapsed, ready to copy."""
    from bench.report.format import esc

    failed = failed_records(records)
    if not failed:
        return ""
    blocks = "".join(f"<details><summary>{esc(title(r))}</summary><pre>"
                     f"{esc(bug_report(r, env))}</pre></details>"
                     for r in failed[:MAX_BUG_REPORTS])  # fmt: skip
    more = len(failed) - MAX_BUG_REPORTS
    tail = (f"<p>{more} more: <code>python -m bench explain RUN_DIR CELL_ID</code> writes the "
            "report of any cell.</p>") if more > 0 else ""  # fmt: skip
    return ("<h2>Bug reports (cells that failed parity)</h2><p>Markdown, ready to paste into "
            "the tracker of whoever is at fault.</p>" + blocks + tail)  # fmt: skip
