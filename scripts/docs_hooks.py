"""mkdocs hooks: pages made from the project's own files when the site is built.

- ``reference/api.md``: every operation of ``openapi.yaml`` (the contract's machine form),
  its roles, parameters, body and answers, so the page cannot drift from the document.
- ``benchmarks.md``: the runs that ``bench/instructions.py --record`` appended to
  ``bench/results.jsonl``, as a table and a chart (SVG, drawn here: no chart library and
  nothing loaded by the browser from outside).
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
API_MARK = "<!-- openapi -->"
BENCH_MARK = "<!-- bench:instructions -->"
STATS_MARK = "<!-- bench:stats -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if API_MARK in markdown:
        markdown = markdown.replace(API_MARK, api_reference(ROOT / "openapi.yaml"))
    if BENCH_MARK in markdown:
        markdown = markdown.replace(BENCH_MARK, instruction_runs(ROOT / "bench" / "results.jsonl"))
        markdown = markdown.replace(STATS_MARK, stats_runs(ROOT / "bench" / "results.jsonl"))
    return markdown


def _schema_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref")
    if ref:
        return f"`{ref.rsplit('/', 1)[-1]}`"
    if schema.get("type") == "array":
        return f"list of {_schema_name(schema.get('items', {}))}"
    return f"`{schema.get('type', 'object')}`"


def api_reference(path: Path) -> str:
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: list[str] = []
    for route, operations in spec["paths"].items():
        for method, op in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            out.append(f"## `{method.upper()} {route}`\n")
            out.append(f"{op.get('summary', '')}\n")
            params = op.get("parameters", [])
            if params:
                out.append("| parameter | in | required | schema |\n|---|---|---|---|")
                for p in params:
                    required = "yes" if p.get("required") else "no"
                    schema = _schema_name(p.get("schema", {}))
                    out.append(f"| `{p['name']}` | {p['in']} | {required} | {schema} |")
                out.append("")
            body = op.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                out.append(f"Body ({media}): {_schema_name(content.get('schema', {}))}\n")
            answers = ", ".join(
                f"{code} {escape(str(r.get('description', '')))}"
                for code, r in op.get("responses", {}).items()
            )
            out.append(f"Answers: {answers}\n")
    return "\n".join(out)


def instruction_runs(path: Path) -> str:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    runs = [json.loads(line) for line in text.splitlines() if line]
    runs = [r for r in runs if r.get("bench") == "instructions"]
    if not runs:
        return "_No run recorded yet: `python bench/instructions.py --record bench/results.jsonl`._"
    rows = [
        "| date (UTC) | build | database | interpreter | million instructions per decision |",
        "|---|---|---|---|---|",
    ]
    for r in runs:
        rows.append(
            f"| {r['date'][:16].replace('T', ' ')} | `{r['commit']}` | {r['database']} "
            f"| {escape(r['python'].split(' (')[0])} "
            f"| {r['instructions_per_decision'] / 1e6:.2f} |"
        )
    return _chart(runs) + "\n\n" + "\n".join(rows)


def _chart(runs: list[dict[str, Any]]) -> str:
    """Bars of instructions per decision, one per recorded run, oldest first."""
    width, height, left, bottom, bar = 640, 240, 60, 40, 28
    top = max(r["instructions_per_decision"] for r in runs) * 1.15
    step = (width - left - 10) / max(len(runs), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="instructions per decision by run" width="100%">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
        'stroke="currentColor"/>',
    ]
    for tick in range(0, int(top / 1e6) + 1, max(1, int(top / 1e6) // 4)):
        y = height - bottom - (tick * 1e6 / top) * (height - bottom - 10)
        parts.append(
            f'<text x="{left - 8}" y="{y + 4:.0f}" font-size="11" text-anchor="end" '
            f'fill="currentColor">{tick} M</text>'
        )
    for i, r in enumerate(runs):
        value = r["instructions_per_decision"]
        h = (value / top) * (height - bottom - 10)
        x = left + i * step + (step - bar) / 2
        y = height - bottom - h
        parts.append(
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{bar}" height="{h:.0f}" fill="#3f51b5">'
            f"<title>{escape(r['commit'] or '')}: {value / 1e6:.2f} M</title></rect>"
        )
        parts.append(
            f'<text x="{x + bar / 2:.0f}" y="{height - bottom + 14}" font-size="10" '
            f'text-anchor="middle" fill="currentColor">{escape(r["commit"] or "?")}</text>'
        )
        parts.append(
            f'<text x="{x + bar / 2:.0f}" y="{y - 4:.0f}" font-size="10" text-anchor="middle" '
            f'fill="currentColor">{value / 1e6:.2f}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def stats_runs(path: Path) -> str:
    """The runs of ``bench/stats.py --record``: seconds to count a year, by grouping."""
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    runs = [r for r in runs if r.get("bench") == "stats"]
    if not runs:
        return "_No run recorded yet: `python bench/stats.py --record bench/results.jsonl`._"
    rows = [
        "| date (UTC) | build | database | cases | no grouping | business type | district "
        "| employer |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        s = r["seconds_by_group"]
        rows.append(
            f"| {r['date'][:16].replace('T', ' ')} | `{r['commit']}` | {r['database']} "
            f"| {r['cases']:,} | {s['none']:.2f} s | {s['business_type']:.2f} s "
            f"| {s['district']:.2f} s | {s['employer']:.2f} s |"
        )
    return "\n".join(rows)
