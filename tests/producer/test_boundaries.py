"""The producer depends on shared (and the emulator for `run`), never on the worker."""

from __future__ import annotations

import ast
from pathlib import Path

PRODUCER = Path(__file__).resolve().parents[2] / "producer"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_producer_module_imports_the_worker() -> None:
    modules = sorted(PRODUCER.glob("*.py"))
    assert len(modules) > 5
    offenders = {
        path.name: sorted(m for m in imported_modules(path) if m.split(".")[0] == "worker")
        for path in modules
    }
    assert {name: found for name, found in offenders.items() if found} == {}
