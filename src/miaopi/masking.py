"""Personal data as those without the right to see it are shown it (and events carry it)."""

from __future__ import annotations


def mask_id(id_number: str) -> str:
    return id_number[:6] + "*" * 8 + id_number[-4:]


def mask_name(name: str) -> str:
    """The surname and a star for each other character (张** for 张三丰)."""
    return name[:1] + "*" * max(len(name) - 1, 1)
