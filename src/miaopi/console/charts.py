"""Charts drawn on the server as SVG: no chart library, no script, nothing fetched.

Presentation attributes (``fill``), not ``style``: the console's Content-Security-Policy
allows no inline style.
"""

from __future__ import annotations

from html import escape
from typing import Any

SVG = "http://www.w3.org/2000/svg"
COLOURS = {"approved": "#2e7d32", "rejected": "#c62828", "referred": "#ef6c00"}


def stacked_days(days: list[dict[str, Any]], label: str, names: dict[str, str]) -> str:
    """Applications per day, each bar split by outcome, with a legend."""
    width, height, left, bottom = 720, 220, 40, 30
    if not days:
        return ""
    top = max(d["applications"] for d in days) or 1
    step = (width - left) / len(days)
    bar = max(step * 0.8, 1.0)
    parts = [
        f'<svg viewBox="0 0 {width} {height + 30}" role="img" aria-label="{escape(label)}" '
        f'class="chart" xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
        'stroke="#888"/>',
        f'<text x="{left - 6}" y="16" text-anchor="end" font-size="11">{top}</text>',
    ]
    scale = (height - bottom - 20) / top
    for i, day in enumerate(days):
        x, y = left + i * step, height - bottom
        for outcome in ("approved", "rejected", "referred"):
            h = day.get(outcome, 0) * scale
            if h:
                y -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                    f'fill="{COLOURS[outcome]}"><title>{escape(day["day"])} '
                    f"{escape(names[outcome])}: {day.get(outcome, 0)}</title></rect>"
                )
    parts.append(
        f'<text x="{left}" y="{height - 10}" font-size="11">{escape(days[0]["day"])}</text>'
    )
    parts.append(f'<text x="{width}" y="{height - 10}" font-size="11" text-anchor="end">'
                 f'{escape(days[-1]["day"])}</text>')  # fmt: skip
    for i, outcome in enumerate(("approved", "rejected", "referred")):
        x = left + i * 140
        parts.append(f'<rect x="{x}" y="{height + 8}" width="12" height="12" '
                     f'fill="{COLOURS[outcome]}"/><text x="{x + 18}" y="{height + 19}" '
                     f'font-size="12">{escape(names[outcome])}</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def bars(items: list[tuple[str, int]], label: str) -> str:
    """Horizontal bars, longest first as given: the referral reasons."""
    if not items:
        return ""
    width, row = 720, 26
    top = max(n for _, n in items) or 1
    height = row * len(items) + 10
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
             f'class="chart" xmlns="{SVG}"><title>{escape(label)}</title>']  # fmt: skip
    for i, (name, n) in enumerate(items):
        y = 5 + i * row
        w = (width - 260) * n / top
        parts.append(f'<text x="0" y="{y + 16}" font-size="12">{escape(name)}</text>'
                     f'<rect x="220" y="{y + 4}" width="{w:.1f}" height="16" fill="#1565c0"/>'
                     f'<text x="{226 + w:.1f}" y="{y + 16}" font-size="12">{n}</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)
