"""The turn runner on the Interactions transport: chain, fallback in the same attempt, and a
losing duplicate that must not fork the chain. Fakes only; the wire is tested against the
emulator (tests/integration/test_interactions.py)."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from pathlib import Path

from shared.errors import BadRequest, InteractionGone
from shared.models import Transport
from shared.request_body import RequestBody
from shared.responses import ApiResponse
from tests.worker.conftest import World, answer, jpeg, make_world
from worker.turn import Outcome, TurnRunner

Script = Callable[[dict[str, object], bool], ApiResponse]


class FakeInteractions:
    """Records each create body and plays a script; records deletes."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.bodies: list[dict[str, object]] = []
        self.sizes: list[int] = []
        self.deleted: list[str] = []

    def create(self, body: RequestBody, *, chained: bool) -> ApiResponse:
        data = b"".join(body.chunks())
        self.sizes.append(len(data))
        self.bodies.append(json.loads(data))
        return self.script(self.bodies[-1], chained)

    def delete(self, interaction_id: str) -> None:
        self.deleted.append(interaction_id)


def _world(
    tmp_path: Path, script: Script, replies: list[ApiResponse] | None = None
) -> tuple[World, FakeInteractions, str]:
    world = make_world(tmp_path, list(replies or []))
    fake = FakeInteractions(script)
    world.services = dataclasses.replace(world.services, interactions=fake)
    sid = world.session(["a room", "paint it #8FAF8A"])
    record = world.repo.session(sid).model_copy(update={"transport": Transport.INTERACTIONS})
    world.store.put(f"sessions/{sid}/session.json", record.model_dump_json().encode())
    return world, fake, sid


def _answer(interaction_id: str) -> ApiResponse:
    return dataclasses.replace(
        answer(jpeg()), interaction_id=interaction_id, interaction_created="2026-11-27T12:00:00Z"
    )


def _run(world: World, sid: str, index: int) -> Outcome:
    return TurnRunner(world.services, owner="o", rng=random.Random(1)).run(sid, index, 1)


def test_a_gone_chain_is_seeded_from_the_store_in_the_same_attempt(tmp_path: Path) -> None:
    def script(body: dict[str, object], chained: bool) -> ApiResponse:
        if chained:
            raise InteractionGone("HTTP 404 NOT_FOUND", status=404)
        return _answer(f"int-{len(fake.bodies)}")

    world, fake, sid = _world(tmp_path, script)
    assert _run(world, sid, 1) is Outcome.COMMITTED
    assert _run(world, sid, 2) is Outcome.COMMITTED

    _, chained, seeded = fake.bodies
    assert chained["previous_interaction_id"] == "int-1"
    assert "previous_interaction_id" not in seeded
    assert [s["type"] for s in seeded["input"]] == [  # type: ignore[index]
        "user_input",
        "thought",
        "model_output",
        "user_input",
    ]
    result = world.repo.result(sid, 2)
    assert result is not None
    assert (result.transport, result.interaction_id) == ("seed", "int-3")
    assert result.upload_bytes == fake.sizes[1] + fake.sizes[2]
    assert result.interaction_expires_at is not None
    assert world.services.gemini.calls == 0  # nothing went to generateContent


def test_a_losing_duplicate_deletes_its_own_interaction_and_the_committed_id_is_the_chain(
    tmp_path: Path,
) -> None:
    def script(body: dict[str, object], chained: bool) -> ApiResponse:
        if not chained:
            return _answer("int-1")
        # Another delivery of turn 2 commits while this one waits for its answer.
        winner = world.repo.result(sid, 1)
        assert winner is not None
        other = winner.model_copy(update={"index": 2, "interaction_id": "int-winner"})
        assert world.repo.commit_result(sid, other)[1]
        return _answer("int-loser")

    world, fake, sid = _world(tmp_path, script)
    assert _run(world, sid, 1) is Outcome.COMMITTED

    assert _run(world, sid, 2) is Outcome.DUPLICATE
    stored = world.repo.result(sid, 2)
    assert stored is not None and stored.interaction_id == "int-winner"
    assert fake.deleted == ["int-loser"]


def test_a_seeded_history_the_api_refuses_is_replayed_through_generate_content(
    tmp_path: Path,
) -> None:
    def script(body: dict[str, object], chained: bool) -> ApiResponse:
        if len(fake.bodies) == 1:
            return _answer("int-1")
        if chained:
            raise InteractionGone("HTTP 404 NOT_FOUND", status=404)
        raise BadRequest("HTTP 400 INVALID_ARGUMENT: bad thought signature", status=400)

    world, fake, sid = _world(tmp_path, script, [answer(jpeg((10, 10, 10)))])
    assert _run(world, sid, 1) is Outcome.COMMITTED

    assert _run(world, sid, 2) is Outcome.COMMITTED
    result = world.repo.result(sid, 2)
    assert result is not None
    assert (result.transport, result.interaction_id) == ("replay", None)
    assert world.gemini.calls == 1
    contents = world.gemini.body_json()["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert result.upload_bytes == fake.sizes[1] + fake.sizes[2] + len(world.gemini.bodies[0])
