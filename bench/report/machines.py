"""Reports of a run merged from shards measured on different machines (`bench merge
--allow-mixed-hardware`): one section per machine, each that machine's cells with its own
tables, headline, charts and environment, so no table ranks cells of two machines together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.report.format import esc, md_text
from bench.report.html import page
from bench.report.html_report import html_parts
from bench.report.markdown import markdown_report

Group = tuple[str, list[dict[str, Any]], dict[str, Any]]


def machine_groups(records: Sequence[dict[str, Any]], env: dict[str, Any]) -> list[Group] | None:
    """(label, records, env) per machine of a mixed-hardware merge; None for any other run."""
    merged = env.get("merged")
    if not isinstance(merged, dict) or not merged.get("mixed_hardware"):
        return None
    machines = [m for m in merged.get("machines") or [] if isinstance(m, dict)]
    groups: list[Group] = []
    placed: set[int] = set()
    for machine in machines:
        hosts, runs = machine.get("hosts") or [], set(machine.get("run_ids") or [])
        mine = [r for r in records if r.get("run_id") in runs]  # the shards it measured
        placed.update(id(r) for r in mine)
        own_env = {**env, **(machine.get("profile") or {}), "host": ", ".join(map(str, hosts))}
        groups.append((str(machine.get("label")), mine, own_env))
    rest = [r for r in records if id(r) not in placed]
    if rest:
        groups.append(("records of no listed machine", rest, env))
    return groups


def _demoted(text: str) -> list[str]:
    """A report's Markdown one heading level lower, outside code fences, title dropped."""
    lines, fence = [], ""
    for line in text.splitlines()[1:]:
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            mark = stripped[: len(stripped) - len(stripped.lstrip(stripped[0]))]
            fence = "" if fence and mark.startswith(fence) else (fence or mark)
        lines.append("#" + line if not fence and line.startswith("#") else line)
    return lines


def grouped_markdown(groups: list[Group], caveats: Sequence[str] = ()) -> str:
    """report.md with one section per machine."""
    parts = ["# bench report", ""]
    parts += [*(f"> ⚠ {md_text(line)}" for line in caveats), *([""] if caveats else [])]
    parts += [f"Merged from shards measured on {len(groups)} different machines: each section "
              "holds one machine's cells; compare across them with care.", ""]  # fmt: skip
    for name, records, env in groups:
        parts += [f"## {md_text(name)}", *_demoted(markdown_report(records, env)), ""]
    return "\n".join(parts)


def grouped_html(groups: list[Group], caveats: Sequence[str] = ()) -> str:
    """report.html with one section per machine; each chart's title names its machine."""
    sections = ["<h1>bench report</h1>"]
    sections += [f"<p class='warn'><b>⚠ {esc(line)}</b></p>" for line in caveats]
    sections.append(f"<p>Merged from shards measured on {len(groups)} different machines: "
                    "each section holds one machine's cells.</p>")  # fmt: skip
    figures = []
    for name, records, env in groups:
        body, charts = html_parts(records, env)
        sections += [f"<h1>{esc(name)}</h1>", *body]
        for fig in charts:
            title = fig.layout.title.text or ""
            fig.update_layout(title_text=f"{name}: {title}" if title else name)
            figures.append(fig)
    return page("bench report", sections, figures)
