"""Cells of the CSV files the service writes, safe to open in a spreadsheet."""

from __future__ import annotations

from typing import Any


def cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell a spreadsheet would read as a formula is quoted (CSV injection, OWASP).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
