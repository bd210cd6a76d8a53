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


# Key names: shared/keys.py spells every store key and every Redis key; no other module may.
KEYS_MODULE = "shared/keys.py"
# `eq:` and the flex lane's `eqflex:`; the families of keys under it (`live:{sid}` ...), lease
# names and budget scopes (which become keys under `lease:` and `budget:`).
REDIS_KEY = re.compile(r"^eq[a-z]*:|^(live|beat|lease|idem|budget|rate|webhook|batch|session):\S*$")
STORE_KEY = re.compile(
    r"^(sessions|batches|blobs|index|waves|outbox)/"  # a top-level prefix of the store
    r"|/(turns|events|open|summaries)/"
    r"|^/?(session|request|result|failure|parked|parks|quality)\.json$"  # a session's, a turn's
    r"|^/(batch|wave)\.json$"  # (a bare `batch.json` is the CLI's output file, not a key)
    r"|^(turns|attempts)/|^lost-"
)


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds) and node.body and isinstance(node.body[0], ast.Expr)
    }


def _hand_spelled_keys(path: Path) -> list[str]:
    """String constants (f-string pieces too; not docstrings) that spell a key, and uses of
    the Redis prefix, which only shared/keys.py may build keys from."""
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        text = node.value if isinstance(node, ast.Constant) else None
        if isinstance(text, str) and id(node) not in docs and _spells_a_key(text):
            found.append(f"{node.lineno}: {text!r}")
        name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
        if name == "REDIS_PREFIX" and isinstance(node, ast.Name | ast.Attribute):
            found.append(f"{node.lineno}: REDIS_PREFIX")
    return found


def _spells_a_key(text: str) -> bool:
    # A `{` is a route template (`/sessions/{session_id}/turns/{index}/image`): an f-string's
    # pieces never hold one.
    return "{" not in text and bool(REDIS_KEY.search(text) or STORE_KEY.search(text))


def test_only_shared_keys_spells_store_and_redis_keys() -> None:
    offenders = []
    for role in ("shared", "worker", "producer"):
        for path in sorted((ROOT / role).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            if rel != KEYS_MODULE:
                offenders += [f"{rel}:{spot}" for spot in _hand_spelled_keys(path)]
    assert offenders == []


def test_the_key_scan_sees_the_spellings_it_forbids() -> None:
    """The patterns catch each form of key this layout has (so the test above can fail)."""
    spelled = _hand_spelled_keys(ROOT / KEYS_MODULE)
    for text in ("'eq:'", "'eqflex:'", "'sessions/'", "'index/open/'", "'waves/open/'"):
        assert any(spot.endswith(text) for spot in spelled), text
    for text in ("'result.json'", "'quality.json'", "'/batch.json'", "'lost-'", "'attempts/'"):
        assert any(spot.endswith(text) for spot in spelled), text
    for text in ("'outbox/'",):
        assert any(spot.endswith(text) for spot in spelled), text
