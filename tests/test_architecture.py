"""The import contract's one blind spot, checked here: no role names the other's modules in a
string (importlib, Celery includes), beyond the few places that start the other role."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE_NAME = re.compile(r"^(worker|producer)(\.[a-z_]+)+(:\w+)?$")
# Where one role starts the other, and why it cannot be an import.
ALLOWED = {
    # `editqueue run` runs the real turn task in-process: the task module registers it by name.
    ("producer/embedded.py", "worker.tasks"),
    # `editqueue worker` execs `celery -A worker.app:app worker` (another process).
    ("producer/worker_fleet.py", "worker.app:app"),
}


def _module_strings(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_text and MODULE_NAME.match(node.value):
            found.add(node.value)
    return found


def test_no_role_names_the_others_modules_in_a_string() -> None:
    offenders = []
    for role, other in (("worker", "producer"), ("producer", "worker"), ("shared", "worker")):
        for path in sorted((ROOT / role).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            for name in _module_strings(path):
                if name.split(".")[0] == other and (rel, name) not in ALLOWED:
                    offenders.append(f"{rel}: {name!r}")
    assert offenders == []


def test_the_allowed_strings_are_still_there() -> None:
    """An entry that no longer matches anything must go (the list only shrinks)."""
    for rel, name in ALLOWED:
        assert name in _module_strings(ROOT / rel), (rel, name)
