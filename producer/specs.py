"""Session specs from files: YAML/JSON (one session or a list) and JSONL (one per line).

Every error is an InvalidSpec that names the file, the line, the field path and what to do, e.g.
`examples/x.yaml:7: turns[2].image_size: '4k' must be one of 512, 1K, 2K, 4K`. A file with any
bad session loads nothing.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from producer.checks import Loc, Problem, format_loc, spec_problems
from producer.fit import estimate_session_fit
from producer.limits import DEFAULT_LIMITS, Limits, text_problems, turn_count_problem
from shared.catalog import DEFAULT_MODEL
from shared.errors import InvalidSpec
from shared.session_spec import SessionSpec

__all__ = [
    "LoadedSpec",
    "error_problem",
    "estimate_session_fit",
    "load_specs",
    "parse_specs",
    "validate_data",
]

JSONL_SUFFIXES = (".jsonl", ".ndjson")
# YAML 1.1 reads `16:9` as the base-60 integer 969 and `512` as an int: keep what was written.
RAW_SCALAR_FIELDS = ("aspect_ratio", "image_size")
MAX_REPORTED = 12
TOO_DEEP = "nested too deeply to be a session spec; a spec is a few levels deep"
Locate = Callable[[Loc], int]


@dataclass(frozen=True)
class LoadedSpec:
    """One session read from a file, with where it came from."""

    spec: SessionSpec
    base_dir: Path  # reference images are relative to the spec file
    source: str  # "file" or "file:line", for messages


@dataclass(frozen=True)
class _Document:
    data: Any
    prefix: Loc  # the session's place in a YAML/JSON list
    locate: Locate  # field path (including prefix) -> 1-based line
    line: int


class _SpecError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def load_specs(
    path: Path, *, default_model: str = DEFAULT_MODEL, limits: Limits = DEFAULT_LIMITS
) -> list[LoadedSpec]:
    """Every session in a spec file, fully validated; InvalidSpec naming file:line:field."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidSpec(f"{path}: cannot read the spec ({exc.strerror}); check the path") from exc
    return parse_specs(raw, path, default_model=default_model, limits=limits)


def parse_specs(
    raw: bytes, path: Path, *, default_model: str = DEFAULT_MODEL, limits: Limits = DEFAULT_LIMITS
) -> list[LoadedSpec]:
    """Parse and validate spec bytes as if read from `path` (its suffix picks the format)."""
    try:
        docs = _documents(_decode(raw), path)
    except _SpecError as exc:
        raise InvalidSpec(f"{path}:{exc.line}: {exc.message}") from None
    except RecursionError:
        raise InvalidSpec(f"{path}:1: {TOO_DEEP}") from None
    loaded: list[LoadedSpec] = []
    problems: list[tuple[int, Problem]] = []
    seen: dict[str, str] = {}
    for doc in docs:
        spec, found = _validate(doc, path.parent, default_model, limits)
        source = f"{path}:{doc.line}"
        if spec is not None and spec.session_id is not None:
            found += _duplicate_id(spec.session_id, source, seen)
        problems += [_located(doc, p) for p in found]
        if spec is not None and not found:
            loaded.append(LoadedSpec(spec, path.parent, source))
    if problems:
        raise InvalidSpec(_report(path, sorted(problems, key=lambda item: item[0])))
    return loaded


def validate_data(
    data: Any, base_dir: Path, default_model: str = DEFAULT_MODEL, limits: Limits = DEFAULT_LIMITS
) -> tuple[SessionSpec | None, list[Problem]]:
    """One session from already-parsed data (an HTTP body): the spec, or its problems by field."""
    return _validate(_Document(data, (), _fixed_line(1), 1), base_dir, default_model, limits)


def error_problem(error: ErrorDetails) -> Problem:
    """A pydantic error worded as the spec loader words it (field path, what to do)."""
    return _problem(error)


def _located(doc: _Document, problem: Problem) -> tuple[int, Problem]:
    loc = (*doc.prefix, *problem.loc)
    return doc.locate(loc), Problem(loc, problem.message)


def _duplicate_id(sid: str, source: str, seen: dict[str, str]) -> list[Problem]:
    if sid in seen:
        message = f"session id {sid!r} is used twice (first at {seen[sid]}); make it unique"
        return [Problem(("session_id",), message)]
    seen[sid] = source
    return []


def _report(path: Path, problems: list[tuple[int, Problem]]) -> str:
    lines = [
        f"{path}:{line}: {format_loc(p.loc) + ': ' if p.loc else ''}{p.message}"
        for line, p in problems[:MAX_REPORTED]
    ]
    if len(problems) > MAX_REPORTED:
        lines.append(f"... and {len(problems) - MAX_REPORTED} more problems")
    return "\n".join(lines)


def _decode(raw: bytes) -> str:
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise _SpecError(line, "this is a binary file, not a spec; pass a YAML, JSON or JSONL file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _SpecError(line, "not UTF-8 text; save the spec as UTF-8") from None
    if not text.strip():
        raise _SpecError(1, "the file is empty; write a session (turns: [- prompt: ...])")
    return text


def _documents(text: str, path: Path) -> list[_Document]:
    if path.suffix.lower() in JSONL_SUFFIXES:
        return _jsonl_documents(text)
    data, root = _load_yaml(text) if path.suffix.lower() != ".json" else _load_json(text)
    locate = _locator(root)
    if isinstance(data, list):
        if not data:
            raise _SpecError(1, "the list of sessions is empty; add at least one session")
        return [_Document(item, (i,), locate, locate((i,))) for i, item in enumerate(data)]
    return [_Document(data, (), locate, locate(()))]


def _jsonl_documents(text: str) -> list[_Document]:
    docs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _SpecError(number, f"JSON syntax error: {exc.msg} (column {exc.colno})") from None
        except RecursionError:
            raise _SpecError(number, TOO_DEEP) from None
        docs.append(_Document(data, (), _fixed_line(number), number))
    if not docs:
        raise _SpecError(1, "the file has no sessions; write one JSON session per line")
    return docs


def _fixed_line(number: int) -> Locate:
    def locate(_loc: Loc) -> int:
        return number

    return locate


def _load_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise _SpecError(line, f"YAML syntax error: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise _SpecError(1, f"YAML error: {exc}") from None
    except RecursionError:
        raise _SpecError(1, TOO_DEEP) from None
    if data is None:
        raise _SpecError(1, "the file holds no session (only comments?); write turns: [...]")
    _keep_raw_scalars(data, root)
    return data, root


def _load_json(text: str) -> tuple[Any, yaml.Node | None]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _SpecError(exc.lineno, f"JSON syntax error: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise _SpecError(1, TOO_DEEP) from None
    try:  # JSON is (nearly) YAML, so composing it maps field paths to lines
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        root = None
    return data, root


def _keep_raw_scalars(data: Any, node: yaml.Node | None) -> None:
    if isinstance(data, dict) and isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = getattr(key_node, "value", None)
            if key not in data:
                continue
            if key in RAW_SCALAR_FIELDS and _is_plain_number(value_node):
                data[key] = value_node.value
            else:
                _keep_raw_scalars(data[key], value_node)
    elif isinstance(data, list) and isinstance(node, yaml.SequenceNode):
        for item, item_node in zip(data, node.value, strict=False):
            _keep_raw_scalars(item, item_node)


def _is_plain_number(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag.endswith((":int", ":float"))


def _locator(root: yaml.Node | None) -> Locate:
    def locate(loc: Loc) -> int:
        if root is None:
            return 1
        node, line = root, root.start_mark.line
        for part in loc:
            found = _child(node, part)
            if found is None:
                break
            node, line = found
        return line + 1

    return locate


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, int] | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) == part:
                return value_node, key_node.start_mark.line
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item = node.value[part]
        return item, item.start_mark.line
    return None


def _validate(
    doc: _Document, base_dir: Path, default_model: str, limits: Limits
) -> tuple[SessionSpec | None, list[Problem]]:
    if not isinstance(doc.data, dict):
        kind = "null" if doc.data is None else type(doc.data).__name__
        return None, [Problem((), f"expected a session (a mapping with turns:), got a {kind}")]
    turns = doc.data.get("turns")
    too_many = turn_count_problem(len(turns), limits) if isinstance(turns, list) else None
    if too_many is not None:
        return None, [Problem(*too_many)]
    try:
        spec = SessionSpec.model_validate(_normalised(doc.data))
    except ValidationError as exc:
        return None, [_problem(error) for error in exc.errors()]
    except RecursionError:
        return None, [Problem((), TOO_DEEP)]
    unstorable = text_problems(doc.data)
    if unstorable:
        return None, [Problem(loc, message) for loc, message in unstorable]
    problems = spec_problems(spec, base_dir, default_model, limits)
    return (None if problems else spec), problems


def _normalised(data: dict[str, Any]) -> dict[str, Any]:
    """`image_size: 512` (a number in YAML and JSON) means the size "512"."""
    out = {**data}
    if isinstance(out.get("image_size"), int):
        out["image_size"] = str(out["image_size"])
    if isinstance(out.get("turns"), list):
        out["turns"] = [_normalised(t) if isinstance(t, dict) else t for t in out["turns"]]
    return out


def _problem(error: ErrorDetails) -> Problem:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return Problem(loc, _unknown_field(loc))
    if kind == "missing":
        return Problem(loc, f"required field {loc[-1]!r} is missing; add it")
    message = error["msg"].removeprefix("Value error, ")
    if loc and isinstance(loc[-1], str) and message.startswith(f"{loc[-1]} '"):
        message = message.removeprefix(f"{loc[-1]} ")
    if kind == "too_short" and loc == ("turns",):
        message = "a session needs at least one turn; add turns: [- prompt: ...]"
    elif kind == "enum":
        message = f"{message}, got {error['input']!r}; fix the value"
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"{message[:1].lower()}{message[1:]}, got {error['input']!r}; fix the value"
    return Problem(loc, message)


def _unknown_field(loc: Loc) -> str:
    name = str(loc[-1])
    known = _fields_at(loc[:-1])
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"unknown field {name!r}; did you mean {close[0]!r}?"
    return f"unknown field {name!r}; known fields here: {', '.join(known)}"


def _fields_at(loc: Loc) -> list[str]:
    """The field names of the model found by following `loc` from SessionSpec."""
    model: Any = SessionSpec
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if _is_model(model) else None
        if field is None:
            return []
        model = field.annotation
        args = [a for a in get_args(model) if _is_model(a)]
        model = args[0] if args else model
    return list(model.model_fields) if _is_model(model) else []


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)
