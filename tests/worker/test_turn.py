"""The turn runner against in-memory services and a scripted API: every step of the turn task."""

from __future__ import annotations

import base64
import dataclasses
import json
import random
from pathlib import Path

import pytest

from shared.errors import AuthError, Blocked, NoImage, RateLimited, ServerError
from shared.models import TurnState
from shared.session_spec import HistoryPolicy
from shared.turn_records import TurnRequest
from tests.worker.conftest import KEY, NOW, answer, jpeg, make_world
from worker.turn import Outcome, TurnRunner


def runner(world, owner: str = "w1") -> TurnRunner:  # type: ignore[no-untyped-def]
    return TurnRunner(world.services, owner=owner, rng=random.Random(1))


def test_first_turn_commits_and_chains_the_requested_next_turn(tmp_path: Path) -> None:
    world = make_world(tmp_path, [answer(jpeg())])
    sid = world.session(["a room", "sage walls"])

    outcome = runner(world).run(sid, 1, attempt=1)

    assert outcome is Outcome.COMMITTED
    result = world.repo.result(sid, 1)
    assert result is not None and result.attempt == 1 and result.cost_usd > 0
    assert result.image.mime_type == "image/jpeg"  # sniffed, although the API said image/png
    assert result.parts[1].returned_mime_type == "image/png"
    assert world.enqueuer.calls == [(sid, 2, 1, 0)]


def test_a_turn_appended_while_the_call_ran_is_chained_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(tmp_path, [answer(jpeg())])
    sid = world.session(["a room"])  # the listing shows no turn 2
    scripted = world.gemini.generate

    def generate(*args: object, **kwargs: object) -> object:
        world.repo.add_request(sid, TurnRequest(index=2, prompt="sage walls", created_at=NOW))
        return scripted(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(world.gemini, "generate", generate)

    assert runner(world).run(sid, 1, attempt=1) is Outcome.COMMITTED
    assert world.enqueuer.calls == [(sid, 2, 1, 0)]


def test_last_turn_commits_without_enqueuing_anything(tmp_path: Path) -> None:
    world = make_world(tmp_path, [answer(jpeg())])
    sid = world.session(["a room"])
    assert runner(world).run(sid, 1, attempt=1) is Outcome.COMMITTED
    assert world.enqueuer.calls == []


def test_second_turn_replays_the_first_model_turn_byte_for_byte(tmp_path: Path) -> None:
    first = jpeg((200, 200, 200))
    world = make_world(tmp_path, [answer(first, signature="sig-1"), answer(jpeg((1, 2, 3)))])
    sid = world.session(["a room", "sage walls"])
    runner(world).run(sid, 1, attempt=1)

    runner(world).run(sid, 2, attempt=1)

    body = world.gemini.body_json()
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    model_parts = body["contents"][1]["parts"]
    assert model_parts[0] == {"text": "Here.", "thoughtSignature": "sig-text"}
    assert model_parts[1]["thoughtSignature"] == "sig-1"
    assert model_parts[1]["inlineData"]["mimeType"] == "image/png"  # as returned, verbatim
    assert base64.b64decode(model_parts[1]["inlineData"]["data"]) == first
    assert body["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}


def test_reanchoring_policy_replays_first_and_last_turns_only(tmp_path: Path) -> None:
    images = [jpeg((i * 40, 0, 0)) for i in range(5)]
    world = make_world(tmp_path, [answer(img) for img in images])
    policy = HistoryPolicy(anchor="first", keep_last=1)
    sid = world.session([f"turn {n}" for n in range(1, 6)], history=policy)
    for n in range(1, 6):
        assert runner(world).run(sid, n, attempt=1) is Outcome.COMMITTED

    texts = [c["parts"][0]["text"] for c in world.gemini.body_json()["contents"]]

    assert texts == ["turn 1", "Here.", "turn 4", "Here.", "turn 5"]


def test_committed_turn_redelivered_does_not_call_the_api_and_chains(tmp_path: Path) -> None:
    world = make_world(tmp_path, [answer(jpeg())])
    sid = world.session(["a", "b"])
    runner(world).run(sid, 1, attempt=1)

    outcome = runner(world, owner="w2").run(sid, 1, attempt=1)

    assert outcome is Outcome.ALREADY_DONE
    assert world.gemini.calls == 1
    assert world.enqueuer.calls[-1] == (sid, 2, 1, 0)


def test_turn_whose_predecessor_is_not_committed_waits_without_calling(tmp_path: Path) -> None:
    world = make_world(tmp_path, [])
    sid = world.session(["a", "b"])
    assert runner(world).run(sid, 2, attempt=1) is Outcome.NOT_READY
    assert world.gemini.calls == 0


def test_cancelled_session_stops_before_the_api_call(tmp_path: Path) -> None:
    world = make_world(tmp_path, [])
    sid = world.session(["a"])
    world.repo.cancel(sid)
    assert runner(world).run(sid, 1, attempt=1) is Outcome.CANCELLED
    assert world.gemini.calls == 0


def test_turn_leased_by_another_delivery_comes_back_later_without_a_call(tmp_path: Path) -> None:
    world = make_world(tmp_path, [])
    sid = world.session(["a"])
    assert world.coord.acquire_lease(f"{sid}:1", "other-worker", 60)

    outcome = runner(world).run(sid, 1, attempt=1)

    assert outcome is Outcome.BUSY
    assert world.gemini.calls == 0
    assert world.enqueuer.calls and world.enqueuer.calls[0][:3] == (sid, 1, 1)


def test_rate_limited_turn_is_requeued_no_sooner_than_retry_delay(tmp_path: Path) -> None:
    world = make_world(tmp_path, [RateLimited("429 quota", retry_after_s=5.0)])
    sid = world.session(["a"])

    outcome = runner(world).run(sid, 1, attempt=1)

    assert outcome is Outcome.RETRY
    (_, index, attempt, countdown) = world.enqueuer.calls[0]
    assert (index, attempt) == (1, 2) and countdown >= 5.0
    live = world.coord.live(sid)[1]
    assert live.state is TurnState.QUEUED and live.error is not None
    assert live.error.kind == "rate_limited"


@pytest.mark.parametrize("attempt", [1, 2, 3, 4])
def test_backoff_countdown_never_exceeds_the_broker_limit(tmp_path: Path, attempt: int) -> None:
    world = make_world(tmp_path, [ServerError("503", status=503)])
    sid = world.session(["a"])
    runner(world).run(sid, 1, attempt=attempt)
    countdown = world.enqueuer.calls[0][3]
    assert 0 < countdown <= world.services.settings.max_countdown_s


def test_transient_error_on_the_last_attempt_fails_the_turn_with_its_reason(tmp_path: Path) -> None:
    world = make_world(
        tmp_path, [ServerError("503 overloaded", status=503)], max_attempts=3, max_parks=0
    )
    sid = world.session(["a", "b"])

    outcome = runner(world).run(sid, 1, attempt=3)

    assert outcome is Outcome.FAILED
    failure = world.repo.failure(sid, 1)
    assert failure is not None
    assert (failure.error.kind, failure.error.status, failure.attempts) == ("server_error", 503, 3)
    assert world.enqueuer.calls == []


def test_no_image_answers_fail_after_the_no_image_attempt_limit(tmp_path: Path) -> None:
    world = make_world(tmp_path, [NoImage("200 without an image")] * 2, no_image_attempts=2)
    sid = world.session(["a"])
    assert runner(world).run(sid, 1, attempt=1) is Outcome.RETRY
    assert runner(world).run(sid, 1, attempt=2) is Outcome.FAILED
    failure = world.repo.failure(sid, 1)
    assert failure is not None and failure.error.kind == "no_image"


def test_blocked_prompt_fails_at_once_and_stops_the_chain(tmp_path: Path) -> None:
    world = make_world(tmp_path, [Blocked("prompt blocked: SAFETY")])
    sid = world.session(["a", "b"])
    assert runner(world).run(sid, 1, attempt=1) is Outcome.FAILED
    assert world.gemini.calls == 1 and world.enqueuer.calls == []
    # A stale redelivery of the failed turn does not call the API again.
    assert runner(world).run(sid, 1, attempt=1) is Outcome.FAILED
    assert world.gemini.calls == 1


def test_api_key_never_reaches_the_failure_record(tmp_path: Path) -> None:
    world = make_world(tmp_path, [AuthError(f"403 API key {KEY} not valid", status=403)])
    sid = world.session(["a"])
    runner(world).run(sid, 1, attempt=1)
    stored = b"".join(world.store.objects.values())
    assert KEY.encode() not in stored
    assert (
        json.loads(world.store.get(f"sessions/{sid}/turns/0001/failure.json"))["error"]["status"]
        == 403
    )


def test_commit_that_loses_the_race_carries_on_with_the_winner(tmp_path: Path) -> None:
    world = make_world(tmp_path, [answer(jpeg((9, 9, 9)))])
    sid = world.session(["a", "b"])
    runner(world).run(sid, 1, attempt=1)
    winner = world.repo.result(sid, 1)
    assert winner is not None
    world.store.delete(f"sessions/{sid}/turns/0001/result.json")

    def other_worker_commits_first(model: str, body: bytes):  # type: ignore[no-untyped-def]
        world.repo.commit_result(sid, winner)
        return answer(jpeg((200, 9, 9)))

    world.gemini._outcomes.append(other_worker_commits_first)
    outcome = runner(world, owner="w2").run(sid, 1, attempt=2)

    assert outcome is Outcome.DUPLICATE
    assert world.repo.result(sid, 1) == winner
    assert world.enqueuer.calls[-1] == (sid, 2, 1, 0)


def test_history_too_large_for_the_model_fails_before_calling(tmp_path: Path) -> None:
    world = make_world(tmp_path, [])
    sid = world.session(["x" * 600_000])  # ~150k tokens of text, over NB2's 131k window
    assert runner(world).run(sid, 1, attempt=1) is Outcome.FAILED
    failure = world.repo.failure(sid, 1)
    assert failure is not None and failure.error.kind == "history_too_large"
    assert world.gemini.calls == 0


def test_events_name_each_committed_turn_and_the_completed_session_once(tmp_path: Path) -> None:
    from shared.events import MemorySink

    world = make_world(tmp_path, [answer(jpeg()), answer(jpeg((5, 5, 5)))])
    sink = MemorySink()
    world.services = dataclasses.replace(world.services, events=sink)
    sid = world.session(["a", "b"])
    runner(world).run(sid, 1, attempt=1)
    runner(world).run(sid, 2, attempt=1)
    runner(world, owner="redelivery").run(sid, 2, attempt=1)  # a duplicate re-emits, same ids

    kinds = [(e.kind.value, e.turn) for e in sink.events]
    assert kinds == [
        ("turn.succeeded", 1),
        ("turn.succeeded", 2),
        ("session.completed", 2),
        ("turn.succeeded", 2),
        ("session.completed", 2),
    ]
    assert len({e.event_id for e in sink.events}) == 3


def test_failed_turn_emits_turn_failed_and_session_failed(tmp_path: Path) -> None:
    from shared.events import MemorySink

    world = make_world(tmp_path, [Blocked("blocked: SAFETY")])
    sink = MemorySink()
    world.services = dataclasses.replace(world.services, events=sink)
    sid = world.session(["a"])
    runner(world).run(sid, 1, attempt=1)
    assert [e.kind.value for e in sink.events] == ["turn.failed", "session.failed"]
    assert sink.events[0].data["error"]["kind"] == "blocked"
