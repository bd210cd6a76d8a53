"""Loading session specs: every bad input is an InvalidSpec naming file, line, field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from producer.specs import load_specs
from shared.errors import InvalidSpec
from tests.producer.conftest import jpeg_bytes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

GOOD_YAML = """\
aspect_ratio: 16:9
image_size: 512
turns:
  - prompt: a room
  - prompt: paint it green
    image_size: 2K
"""

# (file name, content, substrings the message must contain)
BAD_SPECS: list[tuple[str, str | bytes, list[str]]] = [
    (
        "size.yaml",
        "image_size: 2K\nturns:\n  - prompt: a\n  - prompt: b\n  - prompt: c\n    image_size: 4k\n",
        ["size.yaml:6:", "turns[2].image_size", "'4k' must be one of 512, 1K, 2K, 4K"],
    ),
    (
        "typo.yaml",
        "turns:\n  - prompt: a\n  - promt: b\n",
        ["typo.yaml:3:", "turns[1].promt", "did you mean 'prompt'"],
    ),
    (
        "toplevel.yaml",
        "histroy: full\nturns:\n  - prompt: a\n",
        ["toplevel.yaml:1:", "histroy", "did you mean 'history'"],
    ),
    (
        "policy.yaml",
        "history: {anchor: first, keep: 2}\nturns:\n  - prompt: a\n",
        ["policy.yaml:1:", "history.keep", "did you mean 'keep_last'"],
    ),
    (
        "blank.yaml",
        "turns:\n  - prompt: a\n  - prompt: '   '\n",
        ["blank.yaml:3:", "turns[1].prompt", "empty", "write what this turn should change"],
    ),
    (
        "missing.yaml",
        "turns:\n  - images: []\n",
        ["missing.yaml:2:", "turns[0].prompt", "missing"],
    ),
    (
        "type.yaml",
        "turns:\n  - prompt: [1, 2]\n",
        ["type.yaml:2:", "turns[0].prompt", "valid string"],
    ),
    (
        "noturns.yaml",
        "image_size: 1K\nturns: []\n",
        ["noturns.yaml:2:", "turns", "at least one turn"],
    ),
    (
        "syntax.yaml",
        "turns:\n  - prompt: ok\n  - prompt: [unclosed\n",
        ["syntax.yaml:4:", "YAML syntax error"],
    ),
    ("empty.yaml", "", ["empty.yaml:1:", "empty"]),
    ("comments.yaml", "# nothing here\n", ["comments.yaml:1:", "no session"]),
    ("binary.yaml", b"turns:\n\x00\x01\x02", ["binary.yaml:2:", "binary"]),
    ("latin1.yaml", "turns:\n  - prompt: caf\xe9\n".encode("latin-1"), ["latin1.yaml:2:", "UTF-8"]),
    ("scalar.yaml", "just a string\n", ["scalar.yaml:1:", "expected a session"]),
    (
        "pro512.yaml",
        "model: gemini-3-pro-image\nimage_size: 512\nturns:\n  - prompt: a\n",
        ["pro512.yaml:2:", "image_size", "'512'", "gemini-3-pro-image", "1K, 2K, 4K"],
    ),
    (
        "pro18.yaml",
        "model: gemini-3-pro-image\nturns:\n  - prompt: a\n  - prompt: b\n    aspect_ratio: 1:8\n",
        ["pro18.yaml:5:", "turns[1].aspect_ratio", "'1:8'", "gemini-3-pro-image"],
    ),
    (
        "ratio.yaml",
        "aspect_ratio: 16/9\nturns:\n  - prompt: a\n",
        ["ratio.yaml:1:", "aspect_ratio", "'16/9'", "use one of"],
    ),
    (
        "bad.json",
        '{\n  "turns": [\n    {"prompt": "x", "image_size": "8K"}\n  ]\n}\n',
        ["bad.json:3:", "turns[0].image_size", "'8K'"],
    ),
    (
        "syntax.json",
        '{\n  "turns": [\n    {"prompt": "x",}\n  ]\n}\n',
        ["syntax.json:3:", "JSON syntax error"],
    ),
    (
        "batch.jsonl",
        '{"turns": [{"prompt": "ok"}]}\n{"turns": [{"prompt": "ok"}]}\n'
        '{"turns": [{"promt": "x"}]}\n',
        ["batch.jsonl:3:", "turns[0].promt", "did you mean 'prompt'"],
    ),
    (
        "broken.jsonl",
        '{"turns": [{"prompt": "ok"}]}\nnot json\n',
        ["broken.jsonl:2:", "JSON syntax error"],
    ),
    (
        "list.yaml",
        "- turns: [{prompt: a}]\n- turns: [{prompt: b}]\n  image_size: 3K\n",
        ["list.yaml:3:", "[1].image_size", "'3K'"],
    ),
    (
        "dupes.yaml",
        "- session_id: s1\n  turns: [{prompt: a}]\n- session_id: s1\n  turns: [{prompt: b}]\n",
        ["dupes.yaml:3:", "[1].session_id", "'s1' is used twice"],
    ),
    (
        "badid.yaml",
        "session_id: ../etc\nturns: [{prompt: a}]\n",
        ["badid.yaml:1:", "session_id", "1-64 characters"],
    ),
    (
        "image-missing.yaml",
        "turns:\n  - prompt: a\n    images: [photos/nope.jpg]\n",
        ["image-missing.yaml:3:", "turns[0].images[0]", "photos/nope.jpg does not exist"],
    ),
    (
        "image-text.yaml",
        "turns:\n  - prompt: a\n    images: [notes.txt]\n",
        ["image-text.yaml:3:", "turns[0].images[0]", "not a JPEG, PNG, GIF or WebP"],
    ),
    (
        "image-big.yaml",
        "turns:\n  - prompt: a\n    images: [huge.jpg]\n",
        ["image-big.yaml:3:", "turns[0].images[0]", "over the 20 MB limit"],
    ),
]


@pytest.mark.parametrize(("name", "content", "expected"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_bad_spec_is_refused_with_file_line_and_field(
    tmp_path: Path, name: str, content: str | bytes, expected: list[str]
) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "huge.jpg").write_bytes(jpeg_bytes() + b"\0" * (20 * 1024 * 1024))
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())

    with pytest.raises(InvalidSpec) as caught:
        load_specs(path)

    message = str(caught.value)
    assert message.startswith(str(path))
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_yaml_numbers_for_sizes_and_ratios_mean_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD_YAML)

    [loaded] = load_specs(path)

    assert loaded.spec.aspect_ratio == "16:9"  # not the base-60 integer 969
    assert loaded.spec.image_size == "512"
    assert loaded.spec.turns[1].image_size == "2K"


def test_reference_images_are_relative_to_the_spec_file(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "room.jpg").write_bytes(jpeg_bytes())
    path = tmp_path / "s.yaml"
    path.write_text("turns:\n  - prompt: stage it\n    images: [photos/room.jpg]\n")

    [loaded] = load_specs(path)

    assert loaded.base_dir == tmp_path
    assert loaded.spec.turns[0].images == ["photos/room.jpg"]


def test_a_jsonl_batch_loads_one_session_per_line() -> None:
    loaded = load_specs(EXAMPLES / "batch.jsonl")

    assert len(loaded) >= 3
    assert [item.source.rsplit(":", 1)[1] for item in loaded][:3] == ["1", "2", "3"]


def test_a_yaml_list_loads_every_session(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("- turns: [{prompt: a}]\n- turns: [{prompt: b}, {prompt: c}]\n")

    loaded = load_specs(path)

    assert [len(item.spec.turns) for item in loaded] == [1, 2]


def test_the_living_room_example_is_the_articles_five_turns() -> None:
    [loaded] = load_specs(EXAMPLES / "living-room.yaml")
    spec = loaded.spec

    assert spec.model == "gemini-3.1-flash-image"
    assert (spec.aspect_ratio, spec.image_size) == ("16:9", "2K")
    assert len(spec.turns) == 5
    assert spec.turns[1].prompt == (
        "Change wall color to warm sage green (#8FAF8A). Keep all else exactly."
    )
    assert [t.image_size for t in spec.turns] == [None, None, None, None, "4K"]


def test_a_session_too_big_for_full_history_is_refused_with_a_policy_that_fits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "long.yaml"
    turns = "".join(f"  - prompt: edit number {n}\n" for n in range(1, 9))
    path.write_text(f"image_size: 4K\naspect_ratio: '16:9'\nturns:\n{turns}")

    with pytest.raises(InvalidSpec) as caught:
        load_specs(path)

    message = str(caught.value)
    assert "MB inline" in message and "history: full" in message
    assert "anchor: first, keep_last:" in message


def test_the_same_session_with_a_re_anchoring_policy_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    turns = "".join(f"  - prompt: edit number {n}\n" for n in range(1, 9))
    path.write_text(
        f"image_size: 4K\naspect_ratio: '16:9'\nhistory: {{anchor: first, keep_last: 2}}\n"
        f"turns:\n{turns}"
    )

    [loaded] = load_specs(path)

    assert loaded.spec.history.keep_last == 2
