"""Checks a well-typed spec still has to pass: model support, reference images, history fit.

Each check returns `Problem`s located by field path, so the spec loader can name the line and the
Python API can name the field; nothing here writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from producer.fit import (
    CallEstimate,
    SessionFit,
    TurnLoad,
    estimate_call,
    estimate_session_fit,
    largest_fitting_keep_last,
)
from producer.guards import committed_prefix
from producer.limits import DEFAULT_LIMITS, Limits, session_limit_problems, turn_limit_problems
from shared.catalog import ModelProfile, profile_for
from shared.errors import InvalidSpec
from shared.history import reanchor
from shared.images import require_image
from shared.session_records import SessionRecord
from shared.session_spec import SessionSpec, TurnSpec
from shared.sessions import SessionSnapshot
from shared.turn_records import TurnRequest

MEGABYTE = 1024 * 1024

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, at a field path like ("turns", 2, "image_size")."""

    loc: Loc
    message: str


def format_loc(loc: Loc) -> str:
    """`("turns", 2, "image_size")` as `turns[2].image_size`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def problems_error(problems: list[Problem], where: str = "") -> InvalidSpec:
    """One InvalidSpec listing every problem, one per line."""
    prefix = f"{where}: " if where else ""
    lines = [
        f"{prefix}{format_loc(p.loc)}: {p.message}" if p.loc else f"{prefix}{p.message}"
        for p in problems
    ]
    return InvalidSpec("\n".join(lines))


def resolve_image(base_dir: Path, name: str) -> Path:
    """Where a spec's `images:` entry points (relative to the spec file's directory)."""
    return (base_dir / name).expanduser()


def read_reference_image(path: Path, shown: str, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The bytes of a reference image; InvalidSpec when missing, too large or not an image."""
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise InvalidSpec(f"{shown} {what} (looked for {path.resolve()}); fix the path")
    size = path.stat().st_size
    if size > limits.max_image_bytes:
        raise InvalidSpec(
            f"{shown} is {size / MEGABYTE:.1f} MB, over the {limits.max_image_bytes / MEGABYTE:g} "
            "MB limit for a reference image (EDITQUEUE_MAX_IMAGE_BYTES); downscale or recompress it"
        )
    data = path.read_bytes()
    require_image(data, shown, limits.max_image_pixels)
    return data


def _support_problems(
    profile: ModelProfile, loc: Loc, aspect_ratio: str | None, image_size: str | None
) -> list[Problem]:
    problems = []
    if not profile.supports(aspect_ratio, None):
        problems.append(
            Problem(
                (*loc, "aspect_ratio"),
                f"{aspect_ratio!r} is not an aspect ratio {profile.model_id} supports; "
                f"use one of {', '.join(profile.aspect_ratios)}",
            )
        )
    if not profile.supports(None, image_size):
        problems.append(
            Problem(
                (*loc, "image_size"),
                f"{image_size!r} is not an image size {profile.model_id} supports; "
                f"use one of {', '.join(profile.image_sizes)}",
            )
        )
    return problems


def turn_problems(
    turn: TurnSpec,
    profile: ModelProfile,
    base_dir: Path,
    loc: Loc = (),
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[list[Problem], tuple[int, ...]]:
    """A turn's limit, model-support and reference-image problems, and its images' sizes."""
    over = [Problem(where, message) for where, message in turn_limit_problems(turn, limits, loc)]
    if over:
        return over, ()
    problems = _support_problems(profile, loc, turn.aspect_ratio, turn.image_size)
    sizes: list[int] = []
    for j, name in enumerate(turn.images):
        try:
            image = read_reference_image(resolve_image(base_dir, name), name, limits)
            sizes.append(len(image))
        except InvalidSpec as exc:
            problems.append(Problem((*loc, "images", j), exc.message))
    if turn.mask:
        try:
            read_reference_image(resolve_image(base_dir, turn.mask), turn.mask, limits)
        except InvalidSpec as exc:
            problems.append(Problem((*loc, "mask"), exc.message))
    return problems, tuple(sizes)


def _loads(spec: SessionSpec, image_bytes: list[tuple[int, ...]]) -> list[TurnLoad]:
    return [
        TurnLoad(
            prompt_chars=len(turn.prompt),
            user_image_bytes=sizes,
            image_size=turn.image_size or spec.image_size,
            aspect_ratio=turn.aspect_ratio or spec.aspect_ratio,
        )
        for turn, sizes in zip(spec.turns, image_bytes, strict=True)
    ]


def _overflow(profile: ModelProfile, fit: SessionFit, call: CallEstimate) -> str:
    if call.tokens > fit.context_tokens:
        return (
            f"~{call.tokens:,} tokens (the context window of {profile.model_id} is "
            f"{fit.context_tokens:,})"
        )
    limit_mb = fit.limit_bytes // MEGABYTE
    return f"~{call.request_bytes / MEGABYTE:.0f} MB inline (the limit is {limit_mb} MB)"


def fit_problems(spec: SessionSpec, profile: ModelProfile, loads: list[TurnLoad]) -> list[Problem]:
    """A problem when some call of the scripted session would not fit, with a policy that does."""
    fit = estimate_session_fit(profile, loads, spec.history)
    call = fit.first_overflow
    if call is None:
        return []
    keep = largest_fitting_keep_last(profile, loads)
    todo = (
        f"set history: {{anchor: first, keep_last: {keep}}} to re-anchor, or split the session"
        if keep is not None
        else "use a smaller image_size or fewer reference images"
    )
    policy = "history: full" if spec.history.is_full else "this history policy"
    message = f"turn {call.index} would send {_overflow(profile, fit, call)} with {policy}; {todo}"
    return [Problem(("turns", call.index - 1), message)]


def _request_load(record: SessionRecord, request: TurnRequest) -> TurnLoad:
    return TurnLoad(
        prompt_chars=len(request.prompt),
        user_image_bytes=tuple(image.size_bytes for image in request.images),
        image_size=request.image_size or record.image_size,
        aspect_ratio=request.aspect_ratio or record.aspect_ratio,
    )


def append_fit_problems(
    snap: SessionSnapshot, turn: TurnSpec, image_bytes: tuple[int, ...]
) -> list[Problem]:
    """A problem when the call for a turn appended to a stored session would not fit."""
    record = snap.record
    loads = [_request_load(record, snap.requests[n]) for n in sorted(snap.requests)]
    loads.append(
        TurnLoad(
            prompt_chars=len(turn.prompt),
            user_image_bytes=image_bytes,
            image_size=turn.image_size or record.image_size,
            aspect_ratio=turn.aspect_ratio or record.aspect_ratio,
        )
    )
    profile = profile_for(record.model)
    call = estimate_call(profile, loads, record.history, len(loads))
    fit = SessionFit((call,), profile.context_tokens)
    if fit.fits:
        return []
    todo = _reanchor_advice(snap, profile, loads)
    message = f"turn {call.index} would send {_overflow(profile, fit, call)}; {todo}"
    return [Problem((), message)]


def _reanchor_advice(snap: SessionSnapshot, profile: ModelProfile, loads: list[TurnLoad]) -> str:
    """A fork of the session's turns whose re-anchored history fits the new turn, if one does."""
    sid, last = snap.record.session_id, snap.last_index
    keep = largest_fitting_keep_last(profile, loads)
    if keep is None:
        return "use a smaller image_size or fewer reference images"
    todo = f"{reanchor(sid, last, keep)}, or use a smaller image_size"
    if committed_prefix(snap) < last:  # a fork takes committed turns only
        return f"once turn {last} is committed (`editqueue status {sid}`), {todo}"
    return todo


def spec_problems(
    spec: SessionSpec, base_dir: Path, default_model: str, limits: Limits = DEFAULT_LIMITS
) -> list[Problem]:
    """Everything wrong with a well-typed session spec (empty when it can be submitted).

    The limits come first: a spec past them is refused before any image is read or decoded.
    """
    over = session_limit_problems(spec, limits)
    if over:
        return [Problem(where, message) for where, message in over]
    profile = profile_for(spec.model or default_model)
    problems = _support_problems(profile, (), spec.aspect_ratio, spec.image_size)
    image_bytes = []
    for i, turn in enumerate(spec.turns):
        found, sizes = turn_problems(turn, profile, base_dir, ("turns", i), limits)
        problems += found
        image_bytes.append(sizes)
    if problems:
        return problems
    return fit_problems(spec, profile, _loads(spec, image_bytes))


def validate_spec(
    spec: SessionSpec, base_dir: Path, default_model: str, limits: Limits = DEFAULT_LIMITS
) -> None:
    """Raise InvalidSpec naming every problem of a spec built in Python (no file, no lines)."""
    problems = spec_problems(spec, base_dir, default_model, limits)
    if problems:
        raise problems_error(problems, spec.session_id or "session")
