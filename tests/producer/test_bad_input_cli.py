"""Bad input at every CLI command: exit 2, a message naming where and what to do, no traceback,
and nothing written: the store, the live index and the queue are exactly as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from producer import sessions, submission
from producer.cli import main
from producer.context import CliState
from producer.specs import parse_specs
from shared.coordination import MemoryCoordinator
from shared.errors import InvalidSpec
from shared.services import Services
from tests.producer.conftest import (
    RecordingEnqueuer,
    commit_turn,
    fail_turn,
    jpeg_bytes,
    png_claiming,
    spec_of,
)
from tests.producer.test_specs import BAD_SPECS

Args = Callable[["World"], list[str]]


@dataclass
class World:
    """A store with sessions in known states, and the files a bad command may point at."""

    services: Services
    enqueuer: RecordingEnqueuer
    tmp: Path
    done: str  # flash model, turn 1 committed
    failed: str  # turn 1 committed, turn 2 failed
    pro: str  # gemini-3-pro-image, turn 1 committed
    cancelled: str
    full: str  # 4K turns: one more turn would outgrow the inline request limit

    def state(self) -> tuple[object, ...]:
        """Everything a command could write: objects, live entries, parks, sessions, messages."""
        store = self.services.repo.store
        objects = {key: store.get(key) for key in store.list("")}
        coord = self.services.coord
        assert isinstance(coord, MemoryCoordinator)
        sids = [self.done, self.failed, self.pro, self.cancelled, self.full]
        live = {sid: coord.live(sid) for sid in sids}
        parks = coord.due_parks(float("inf"), 1000)
        return objects, live, parks, coord.tracked_sessions(), list(self.enqueuer.calls)


@functools.cache
def _largest_fitting() -> int:
    """How many 4K 16:9 turns a full-history session may have."""
    for turns in range(1, 20):
        prompts = "".join(f"  - prompt: edit {n}\n" for n in range(turns + 1))
        spec = f"image_size: 4K\naspect_ratio: '16:9'\nturns:\n{prompts}"
        try:
            parse_specs(spec.encode(), Path("probe.yaml"))
        except InvalidSpec:
            return turns
    raise AssertionError("no 4K session ever outgrows the limits")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Reference files a bad command may point at (written once: one is over 20 MB)."""
    folder = tmp_path_factory.mktemp("files")
    (folder / "notes.txt").write_text("not an image")
    (folder / "huge.jpg").write_bytes(jpeg_bytes() + b"\0" * (20 * 1024 * 1024))
    return folder


@pytest.fixture
def world(services: Services, enqueuer: RecordingEnqueuer, tmp_path: Path, files: Path) -> World:
    for name in ("notes.txt", "huge.jpg"):
        (tmp_path / name).symlink_to(files / name)
    done = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    commit_turn(services, done, 1)
    failed = submission.submit_session(services, spec_of("a", "b"), base_dir=tmp_path)
    commit_turn(services, failed, 1)
    fail_turn(services, failed, 2)
    pro = submission.submit_session(
        services, spec_of("a", model="gemini-3-pro-image"), base_dir=tmp_path
    )
    commit_turn(services, pro, 1)
    cancelled = submission.submit_session(services, spec_of("a"), base_dir=tmp_path)
    sessions.cancel(services, cancelled)
    turns = _largest_fitting()
    big = spec_of(*(f"edit {n}" for n in range(turns)), image_size="4K", aspect_ratio="16:9")
    full = submission.submit_session(services, big, base_dir=tmp_path)
    return World(services, enqueuer, tmp_path, done, failed, pro, cancelled, full)


def invoke(world: World, args: list[str]) -> Result:
    return CliRunner().invoke(main, args, obj=CliState(services=world.services))


def assert_refused(world: World, args: list[str], expected: list[str]) -> str:
    """Exit 2, one `error:` message holding every expected part, no traceback, nothing written."""
    before = world.state()

    result = invoke(world, args)

    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    for part in expected:
        assert part in result.stderr, f"{part!r} not in {result.stderr!r}"
    assert world.state() == before, "a refused command changed the store, index or queue"
    return result.stderr


# --- submit: every bad spec of the loader's table, through the command -----------------------


@pytest.mark.parametrize(("name", "content", "expected"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_submit_of_a_bad_spec_exits_2_naming_file_line_and_field_and_writes_nothing(
    world: World, name: str, content: str | bytes, expected: list[str]
) -> None:
    path = world.tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())

    message = assert_refused(world, ["submit", str(path)], expected)

    assert message.startswith(f"error: {path}:")


# (file name, content, what the message must say)
MORE_BAD_SPECS: list[tuple[str, str, list[str]]] = [
    (
        "history-word.yaml",
        "history: last3\nturns:\n  - prompt: a\n",
        [":1: history:", "'last3' must be 'full', 'first+last:K' or {anchor: first, keep_last: K}"],
    ),
    (
        "history-half.yaml",
        "history: {anchor: first}\nturns:\n  - prompt: a\n",
        [":1: history:", "needs both anchor: first and keep_last"],
    ),
    (
        "history-zero.yaml",
        "history:\n  anchor: first\n  keep_last: 0\nturns:\n  - prompt: a\n",
        [":3: history.keep_last:", "greater than or equal to 1"],
    ),
    (
        "history-anchor.yaml",
        "history: {anchor: last, keep_last: 2}\nturns:\n  - prompt: a\n",
        [":1: history.anchor:", "'first'"],
    ),
    (
        "budget.yaml",
        "budget_usd: -5\nturns:\n  - prompt: a\n",
        [":1: budget_usd:", "greater than or equal to 0"],
    ),
    ("turns-type.yaml", "turns: a room\n", [":1: turns:", "valid list", "'a room'"]),
    (
        "turn-type.yaml",
        "turns:\n  - a room\n",
        [":2: turns[0]:", "valid dictionary", "'a room'"],
    ),
    (
        "images-type.yaml",
        "turns:\n  - prompt: a\n    images: room.jpg\n",
        [":3: turns[0].images:", "valid list"],
    ),
    (
        "model-type.yaml",
        "model: 3\nturns:\n  - prompt: a\n",
        [":1: model:", "valid string", "got 3"],
    ),
    (
        "empty-prompt.json",
        '{"turns": [\n  {"prompt": ""}\n]}\n',
        [":2: turns[0].prompt:", "empty"],
    ),
    (
        "blank-line.jsonl",
        '{"turns": [{"prompt": "ok"}]}\n\n{"turns": [{"prompt": " "}]}\n',
        [":3: turns[0].prompt:", "empty"],
    ),
    (
        "sid-long.yaml",
        f"session_id: {'x' * 65}\nturns:\n  - prompt: a\n",
        [":1: session_id:", "1-64 characters"],
    ),
    (
        "sid-space.yaml",
        "session_id: my session\nturns:\n  - prompt: a\n",
        [":1: session_id:", "1-64 characters"],
    ),
    ("list-empty.yaml", "[]\n", [":1:", "empty"]),
    ("jsonl-blank.jsonl", "\n\n", [":1:", "empty"]),
    (
        "jsonl-scalar.jsonl",
        '{"turns": [{"prompt": "ok"}]}\n42\n',
        [":2:", "expected a session"],
    ),
    ("utf16.yaml", "turns:\n  - prompt: a\n", [":1:", "binary"]),
    # Hostile input (issue 10): each used to end in a traceback, a 500 or a half-written session.
    ("deep.yaml", "[" * 5000 + "]" * 5000 + "\n", [":1:", "nested too deeply"]),
    ("deep.json", "[" * 100_000 + "]" * 100_000, [":1:", "nested too deeply"]),
    ("deep.jsonl", "[" * 100_000 + "]" * 100_000 + "\n", [":1:", "nested too deeply"]),
    (
        "surrogate.json",
        '{"turns": [{"prompt": "a"},\n {"prompt": "b \\ud800"}]}',
        [":2: turns[1].prompt:", "unpaired surrogate", "remove it"],
    ),
    (
        "budget-inf.json",
        '{"budget_usd": Infinity, "turns": [{"prompt": "a"}]}',
        [":1: budget_usd:", "finite"],
    ),
    (
        "budget-nan.yaml",
        "budget_usd: .nan\nturns:\n  - prompt: a\n",
        [":1: budget_usd:", "finite"],
    ),
    (
        "turns-501.yaml",
        "turns:\n" + "  - prompt: a\n" * 501,
        [":1: turns:", "501 turns", "limit of 500", "EDITQUEUE_MAX_TURNS"],
    ),
    (
        "prompt-long.yaml",
        f"turns:\n  - prompt: {'x' * 20_001}\n",
        [":2: turns[0].prompt:", "EDITQUEUE_MAX_PROMPT_CHARS"],
    ),
    (
        "model-long.yaml",
        f"model: {'m' * 200}\nturns:\n  - prompt: a\n",
        [":1: model:", "EDITQUEUE_MAX_MODEL_CHARS"],
    ),
    (
        "metadata-big.yaml",
        f"metadata: {{blob: {'z' * 17_000}}}\nturns:\n  - prompt: a\n",
        [":1: metadata:", "EDITQUEUE_MAX_METADATA_BYTES"],
    ),
    (
        "mask-missing.yaml",
        "turns:\n  - prompt: a\n  - prompt: paint the walls\n    mask: walls.png\n",
        [":4: turns[1].mask:", "walls.png does not exist", "fix the path"],
    ),
    (
        "mask-type.yaml",
        "turns:\n  - prompt: a\n    mask: [walls.png]\n",
        [":3: turns[0].mask:", "valid string"],
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "expected"), MORE_BAD_SPECS, ids=[c[0] for c in MORE_BAD_SPECS]
)
def test_more_bad_specs_exit_2_naming_the_line_and_field(
    world: World, name: str, content: str, expected: list[str]
) -> None:
    path = world.tmp / name
    data = content.encode("utf-16") if name.startswith("utf16") else content.encode()
    path.write_bytes(data)

    message = assert_refused(world, ["submit", str(path)], [name, *expected])

    assert message.startswith(f"error: {path}:")


def test_a_session_that_would_outgrow_the_limits_is_refused_at_submit_with_a_policy(
    world: World,
) -> None:
    turns = _largest_fitting() + 1
    prompts = "".join(f"  - prompt: edit {n}\n" for n in range(turns))
    path = world.tmp / "long.yaml"
    path.write_text(f"image_size: 4K\naspect_ratio: '16:9'\nturns:\n{prompts}")

    assert_refused(
        world,
        ["submit", str(path)],
        [f"long.yaml:{3 + turns}: turns[{turns - 1}]:", "history: full", "keep_last:"],
    )


def test_a_jsonl_batch_with_one_bad_line_enqueues_nothing_from_the_file(world: World) -> None:
    good = '{"turns": [{"prompt": "ok"}]}'
    path = world.tmp / "batch.jsonl"
    path.write_text(f"{good}\n{good}\n{good}\n" + '{"turns": [{"prompt": "x"}], "budget": 1}\n')

    assert_refused(world, ["submit", str(path)], ["batch.jsonl:4: budget:", "unknown field"])


def test_submit_of_a_directory_is_a_usage_error(world: World) -> None:
    assert_refused(world, ["submit", str(world.tmp)], ["is a directory"])


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_budget_option_that_is_not_an_amount_exits_2(world: World, value: str) -> None:
    path = world.tmp / "ok.jsonl"
    path.write_text('{"turns": [{"prompt": "a"}]}\n')

    assert_refused(world, ["submit", str(path), "--budget-usd", value], ["--budget-usd", "amount"])


def test_a_pixel_bomb_reference_image_exits_2_naming_the_limit(world: World) -> None:
    bomb = world.tmp / "bomb.png"
    bomb.write_bytes(png_claiming(20_000, 20_000))
    fake = world.tmp / "fake.gif"
    fake.write_bytes(b"GIF89a<html>not an image</html>")
    path = world.tmp / "images.yaml"
    path.write_text("turns:\n  - prompt: a\n    images: [bomb.png, fake.gif]\n")

    assert_refused(
        world,
        ["submit", str(path)],
        ["images.yaml:3: turns[0].images[0]", "EDITQUEUE_MAX_IMAGE_PIXELS", "does not decode"],
    )


def test_a_negative_budget_option_exits_2(world: World) -> None:
    path = world.tmp / "ok.jsonl"
    path.write_text('{"turns": [{"prompt": "a"}]}\n{"turns": [{"prompt": "b"}]}\n')

    assert_refused(world, ["submit", str(path), "--budget-usd", "-1"], ["budget"])


# --- commands on stored sessions --------------------------------------------------------------

# (case id, arguments given the world, what stderr must say)
COMMANDS: list[tuple[str, Args, list[str]]] = [
    ("status-unknown", lambda w: ["status", "nope", "--json"], ["session nope does not exist"]),
    ("status-path-id", lambda w: ["status", "../x"], ["'../x'", "1-64 characters"]),
    ("append-unknown", lambda w: ["append", "nope", "paint it"], ["session nope does not exist"]),
    ("append-path-id", lambda w: ["append", "a/b", "paint it"], ["'a/b'", "1-64 characters"]),
    ("append-blank-prompt", lambda w: ["append", w.done, "   "], ["prompt is empty"]),
    (
        "append-pro-512",
        lambda w: ["append", w.pro, "paint it", "--image-size", "512"],
        ["image_size", "'512'", "gemini-3-pro-image", "1K, 2K, 4K"],
    ),
    (
        "append-pro-1:8",
        lambda w: ["append", w.pro, "paint it", "--aspect-ratio", "1:8"],
        ["aspect_ratio", "'1:8'", "gemini-3-pro-image"],
    ),
    (
        "append-image-missing",
        lambda w: ["append", w.done, "stage it", "--image", str(w.tmp / "gone.jpg")],
        ["gone.jpg does not exist", "fix the path"],
    ),
    (
        "append-image-not-an-image",
        lambda w: ["append", w.done, "stage it", "--image", str(w.tmp / "notes.txt")],
        ["notes.txt", "not a JPEG, PNG, GIF or WebP"],
    ),
    (
        "append-image-too-large",
        lambda w: ["append", w.done, "stage it", "--image", str(w.tmp / "huge.jpg")],
        ["huge.jpg", "over the 20 MB limit"],
    ),
    (
        "append-outgrows-the-limits",
        lambda w: ["append", w.full, "one more"],
        ["append to {full}", "would send", "once turn", "--history first+last:"],
    ),
    (
        "append-cancelled",
        lambda w: ["append", w.cancelled, "more"],
        ["cancelled", "submit the spec again"],
    ),
    ("retry-unknown", lambda w: ["retry", "nope"], ["session nope does not exist"]),
    ("retry-succeeded", lambda w: ["retry", w.done, "--turn", "1"], ["turn 1", "succeeded"]),
    ("retry-nothing-failed", lambda w: ["retry", w.done], ["no failed turn"]),
    ("retry-past-the-end", lambda w: ["retry", w.failed, "--turn", "9"], ["no turn 9", "1..2"]),
    ("retry-turn-zero", lambda w: ["retry", w.failed, "--turn", "0"], ["--turn", "0"]),
    (
        "retry-blank-prompt",
        lambda w: ["retry", w.failed, "--prompt", "  "],
        ["--prompt is empty"],
    ),
    ("retry-cancelled", lambda w: ["retry", w.cancelled], ["cancelled"]),
    ("cancel-unknown", lambda w: ["cancel", "nope"], ["session nope does not exist"]),
    ("cancel-path-id", lambda w: ["cancel", ".."], ["'..'", "1-64 characters"]),
    (
        "fork-past-the-last-turn",
        lambda w: ["fork", w.failed, "--at", "2"],
        ["cannot fork", "at turn 2", "pick 1..1"],
    ),
    ("fork-at-zero", lambda w: ["fork", w.done, "--at", "0"], ["cannot fork", "pick 1..1"]),
    ("fork-unknown", lambda w: ["fork", "nope", "--at", "1"], ["session nope does not exist"]),
    (
        "fork-bad-new-id",
        lambda w: ["fork", w.done, "--at", "1", "--session-id", "x/y"],
        ["'x/y'", "1-64 characters"],
    ),
    (
        "fork-taken-new-id",
        lambda w: ["fork", w.done, "--at", "1", "--session-id", w.failed],
        ["already exists"],
    ),
    ("fork-at-not-a-number", lambda w: ["fork", w.done, "--at", "two"], ["--at", "two"]),
    (
        "fork-bad-history",
        lambda w: ["fork", w.done, "--at", "1", "--history", "last:2"],
        ["--history: history 'last:2' must be 'full', 'first+last:K'"],
    ),
    (
        "fork-negative-budget",
        lambda w: ["fork", w.done, "--at", "1", "--budget-usd", "-1"],
        ["--budget-usd -1 is negative"],
    ),
    (
        "cancel-completed",
        lambda w: ["cancel", w.done],
        ["is completed: nothing is left to cancel", "editqueue append"],
    ),
    ("cancel-failed", lambda w: ["cancel", w.failed], ["is failed (turn 2)", "editqueue retry"]),
    (
        "export-unknown",
        lambda w: ["export", "nope", str(w.tmp / "out")],
        ["session nope does not exist"],
    ),
]


@pytest.mark.parametrize(("case", "args", "expected"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_refuses_bad_input_with_exit_2_and_writes_nothing(
    world: World, case: str, args: Args, expected: list[str]
) -> None:
    expected = [part.replace("{full}", world.full) for part in expected]

    assert_refused(world, args(world), expected)

    assert not (world.tmp / "out").exists()
