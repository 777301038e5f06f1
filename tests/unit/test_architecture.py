"""The house rules a newcomer relies on: small modules, and the core free of adapters."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "miaopi"
# The composition root is the one module that chooses what stands behind the ports.
COMPOSITION_ROOT = SRC / "bootstrap.py"
MOST_LINES = 400


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_of_the_core_is_over_400_lines() -> None:
    too_long = {
        str(p.relative_to(SRC)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MOST_LINES
    }
    assert too_long == {}, f"one concern a module, {MOST_LINES} lines at most: {too_long}"


def test_only_the_composition_root_imports_the_adapters() -> None:
    offenders = {}
    for path in _modules():
        if path == COMPOSITION_ROOT:
            continue
        found = {
            name
            for name in _imported(ast.parse(path.read_text(encoding="utf-8")))
            if name == "miaopi.adapters" or name.startswith("miaopi.adapters.")
        }
        if found:
            offenders[str(path.relative_to(SRC))] = sorted(found)
    assert offenders == {}, f"the core speaks to registries through evidence/ports.py: {offenders}"


def test_the_check_sees_an_import_of_the_adapters() -> None:
    # The check above would pass on a parser that found nothing: show it finds the real one.
    found = _imported(ast.parse(COMPOSITION_ROOT.read_text(encoding="utf-8")))
    assert any(name.startswith("miaopi.adapters.") for name in found)
