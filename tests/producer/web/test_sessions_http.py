"""The /v1/sessions routes over in-memory services: what they write, answer and refuse."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from producer.specs import parse_specs
from shared.errors import InvalidSpec
from shared.events import EventKind, MemorySink
from shared.models import SessionState
from tests.producer.conftest import RecordingEnqueuer, commit_turn, fail_turn, png_bytes
from tests.producer.web.conftest import (
    ACME,
    GLOBEX,
    MakeClient,
    bearer,
    create,
    services_of,
    spec_body,
)


def test_creating_a_session_stores_it_for_the_tenant_and_queues_turn_one(
    client: TestClient, enqueuer: RecordingEnqueuer
) -> None:
    body = spec_body("a room", "paint it", webhook_url="https://hooks.example/eq")

    answer = client.post("/v1/sessions", json=body, headers=bearer(ACME))

    assert answer.status_code == 201
    doc = answer.json()
    sid = doc["session_id"]
    assert doc["state"] == "queued"
    assert doc["status_url"] == f"http://testserver/v1/sessions/{sid}"
    assert answer.headers["location"] == doc["status_url"]
    assert doc["urls"]["gallery"].startswith(f"http://testserver/ui/sessions/{sid}?tenant=acme")
    record = services_of(client).repo.session(sid)
    assert (record.tenant, record.webhook_url) == ("acme", "https://hooks.example/eq")
    assert enqueuer.calls == [(sid, 1)]


def test_a_session_without_a_token_or_with_a_wrong_one_is_401(client: TestClient) -> None:
    for headers in ({}, bearer("not-a-token-at-all-xx"), {"Authorization": ACME}):
        answer = client.post("/v1/sessions", json=spec_body("a room"), headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["error"]["kind"] == "unauthorized"
    assert list(services_of(client).repo.session_ids()) == []


def test_bad_input_is_422_naming_the_field_in_the_clis_words(
    client: TestClient, tmp_path: Path
) -> None:
    body = {"turns": [{"prompt": "a room", "image_size": "4k"}]}
    with pytest.raises(InvalidSpec) as cli:
        parse_specs(json.dumps(body).encode(), tmp_path / "spec.json")

    answer = client.post("/v1/sessions", json=body, headers=bearer(ACME))

    assert answer.status_code == 422
    [field] = answer.json()["error"]["fields"]
    assert field["field"] == "turns[0].image_size"
    assert field["message"] in str(cli.value)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"turns": []}, "turns", "at least one turn"),
        ({"turns": [{"prompt": " "}]}, "turns[0].prompt", "prompt is empty"),
        ({"turns": [{"prompt": "a", "promt": "b"}]}, "turns[0].promt", "did you mean 'prompt'"),
        ({"turns": [{"prompt": "a", "images": ["/etc/passwd"]}]}, "turns[0].images[0]", "base64"),
        ({"turns": [{"prompt": "a", "mask": "/etc/passwd"}]}, "turns[0].mask", "base64"),
        (
            {"turns": [{"prompt": "a", "images": ["bm90IGFuIGltYWdl"]}]},
            "turns[0].images[0]",
            "not a JPEG",
        ),
        ({"turns": [{"prompt": "a"}], "aspect_ratio": "7:3"}, "aspect_ratio", "use one of"),
        ({"turns": [{"prompt": "a"}], "webhook_url": "ftp://x"}, "webhook_url", "http"),
        ({"turns": [{"prompt": "a"}], "session_id": "../x"}, "session_id", "1-64 characters"),
        (["not", "a", "session"], "body", "expected a session"),
    ],
)
def test_every_kind_of_bad_input_names_its_field(
    client: TestClient, body: object, field: str, words: str
) -> None:
    answer = client.post("/v1/sessions", json=body, headers=bearer(ACME))

    assert answer.status_code == 422, answer.text
    fields = {f["field"]: f["message"] for f in answer.json()["error"]["fields"]}
    assert field in fields, fields
    assert words in fields[field]
    assert list(services_of(client).repo.session_ids()) == []


def test_malformed_json_is_422(client: TestClient) -> None:
    answer = client.post(
        "/v1/sessions",
        content=b'{"turns": [',
        headers={**bearer(ACME), "content-type": "application/json"},
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["kind"] == "invalid_spec"


@pytest.mark.parametrize("secret", [None, ""])
def test_a_webhook_needs_the_servers_secret(make_client: MakeClient, secret: str | None) -> None:
    client = make_client(webhook_secret=SecretStr(secret) if secret is not None else None)
    body = spec_body("a room", webhook_url="https://hooks.example/eq")

    answer = client.post("/v1/sessions", json=body, headers=bearer(ACME))

    assert answer.status_code == 422
    assert "EDITQUEUE_WEBHOOK_SECRET" in answer.json()["error"]["fields"][0]["message"]


def test_reference_images_travel_as_base64_or_data_urls(client: TestClient) -> None:
    png = png_bytes()
    images = [
        base64.b64encode(png).decode(),
        "data:image/png;base64," + base64.b64encode(png).decode(),
    ]
    body = {"turns": [{"prompt": "stage it", "images": images}]}

    answer = client.post("/v1/sessions", json=body, headers=bearer(ACME))

    assert answer.status_code == 201, answer.text
    services = services_of(client)
    request = services.repo.request(answer.json()["session_id"], 1)
    assert request is not None
    assert [services.blobs.read(r.sha256) for r in request.images] == [png, png]


def test_a_mask_travels_as_base64_and_is_stored_beside_the_turn(client: TestClient) -> None:
    png = png_bytes()
    body = {"turns": [{"prompt": "paint the walls", "mask": base64.b64encode(png).decode()}]}

    answer = client.post("/v1/sessions", json=body, headers=bearer(ACME))

    assert answer.status_code == 201, answer.text
    services = services_of(client)
    request = services.repo.request(answer.json()["session_id"], 1)
    assert request is not None and request.mask is not None and request.images == []
    assert services.blobs.read(request.mask.sha256) == png


def test_the_status_document_carries_image_urls_for_committed_turns(client: TestClient) -> None:
    sid = create(client)
    commit_turn(services_of(client), sid, 1)

    doc = client.get(f"/v1/sessions/{sid}", headers=bearer(ACME)).json()

    assert doc["state"] == "running"
    first, second = doc["turns"]
    assert first["image_url"] == f"http://testserver/v1/sessions/{sid}/turns/1/image"
    assert first["prompt"] == "a room" and first["state"] == "succeeded"
    assert second["image_url"] is None
    assert doc["urls"]["cancel"].endswith(f"/v1/sessions/{sid}/cancel")


def test_a_turn_image_is_the_exact_bytes_without_s3(client: TestClient) -> None:
    sid = create(client)
    result = commit_turn(services_of(client), sid, 1)

    answer = client.get(f"/v1/sessions/{sid}/turns/1/image", headers=bearer(ACME))

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["etag"] == f'"{result.image.blob}"'
    assert services_of(client).blobs.read(result.image.blob) == answer.content
    assert client.get(f"/v1/sessions/{sid}/turns/2/image", headers=bearer(ACME)).status_code == 404


def test_a_turn_image_redirects_to_a_presigned_url_when_the_store_can(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = create(client)
    result = commit_turn(services_of(client), sid, 1)
    store = services_of(client).repo.store
    asked: list[tuple[str, int, str]] = []

    def presigned_url(key: str, expires_s: int = 0, *, content_type: str = "") -> str:
        asked.append((key, expires_s, content_type))
        return "https://s3.example/blob?X-Amz-Expires=900"

    monkeypatch.setattr(store, "presigned_url", presigned_url, raising=False)

    answer = client.get(
        f"/v1/sessions/{sid}/turns/1/image", headers=bearer(ACME), follow_redirects=False
    )

    assert answer.status_code == 307
    assert answer.headers["location"] == "https://s3.example/blob?X-Amz-Expires=900"
    assert asked == [(f"blobs/sha256/{result.image.blob}", 900, "image/jpeg")]


def test_another_tenants_session_is_404_everywhere(client: TestClient) -> None:
    sid = create(client, ACME)
    commit_turn(services_of(client), sid, 1)
    other = bearer(GLOBEX)

    answers = [
        client.get(f"/v1/sessions/{sid}", headers=other),
        client.get(f"/v1/sessions/{sid}/turns/1/image", headers=other),
        client.post(f"/v1/sessions/{sid}/turns", json={"prompt": "x"}, headers=other),
        client.post(f"/v1/sessions/{sid}/cancel", headers=other),
        client.post(f"/v1/sessions/{sid}/retry", headers=other),
        client.post(f"/v1/sessions/{sid}/fork", json={"at": 1}, headers=other),
    ]

    assert [a.status_code for a in answers] == [404] * 6
    assert client.get("/v1/sessions/nope", headers=other).json() == answers[0].json()
    assert not services_of(client).repo.is_cancelled(sid)


def test_a_turn_appended_over_http_waits_for_its_predecessor(
    client: TestClient, enqueuer: RecordingEnqueuer
) -> None:
    sid = create(client)

    answer = client.post(
        f"/v1/sessions/{sid}/turns",
        json={"prompt": "add a walnut bookshelf", "image_size": 512},
        headers=bearer(ACME),
    )

    assert answer.status_code == 201
    assert answer.json()["index"] == 3
    request = services_of(client).repo.request(sid, 3)
    assert request is not None and request.image_size == "512"
    assert enqueuer.calls == [(sid, 1)]  # turn 2 is not committed: the worker chains turn 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "a", "image_size": "3K"}, "image_size"),
        ({}, "prompt"),
    ],
)
def test_a_bad_appended_turn_is_422(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    sid = create(client)

    answer = client.post(f"/v1/sessions/{sid}/turns", json=body, headers=bearer(ACME))

    assert answer.status_code == 422
    assert answer.json()["error"]["fields"][0]["field"] == field
    assert services_of(client).repo.request(sid, 3) is None


def test_retry_reruns_a_failed_turn_and_refuses_others(
    client: TestClient, enqueuer: RecordingEnqueuer
) -> None:
    sid = create(client)
    services = services_of(client)
    commit_turn(services, sid, 1)
    fail_turn(services, sid, 2)

    answer = client.post(
        f"/v1/sessions/{sid}/retry", json={"prompt": "add a plant"}, headers=bearer(ACME)
    )
    again = client.post(f"/v1/sessions/{sid}/retry", headers=bearer(ACME))

    assert answer.status_code == 202 and answer.json()["index"] == 2
    assert services.repo.request(sid, 2).prompt == "add a plant"  # type: ignore[union-attr]
    assert enqueuer.calls[-1] == (sid, 2)
    assert again.status_code == 409


def test_cancel_marks_the_session_and_emits_session_cancelled(
    client: TestClient, sink: MemorySink
) -> None:
    sid = create(client)

    answer = client.post(f"/v1/sessions/{sid}/cancel", headers=bearer(ACME))

    assert answer.status_code == 202
    assert services_of(client).repo.is_cancelled(sid)
    assert [(e.kind, e.session_id) for e in sink.events] == [(EventKind.SESSION_CANCELLED, sid)]
    doc = client.get(f"/v1/sessions/{sid}", headers=bearer(ACME)).json()
    assert doc["state"] == SessionState.CANCELLED


def test_fork_keeps_the_tenant(client: TestClient) -> None:
    sid = create(client)
    commit_turn(services_of(client), sid, 1)

    answer = client.post(
        f"/v1/sessions/{sid}/fork", json={"at": 1, "session_id": "branch-1"}, headers=bearer(ACME)
    )
    too_far = client.post(f"/v1/sessions/{sid}/fork", json={"at": 2}, headers=bearer(ACME))
    missing = client.post(f"/v1/sessions/{sid}/fork", json={}, headers=bearer(ACME))

    assert answer.status_code == 201
    assert answer.json()["session_id"] == "branch-1"
    assert services_of(client).repo.session("acme.branch-1").tenant == "acme"
    assert too_far.status_code == 409  # turn 2 exists but is not committed yet
    assert "not committed yet" in too_far.json()["error"]["message"]
    assert missing.status_code == 422
    assert missing.json()["error"]["fields"][0]["field"] == "at"


def test_listing_shows_the_tenants_sessions_by_state_a_page_at_a_time(client: TestClient) -> None:
    mine = sorted(create(client, ACME, session_id=f"acme-{n}") for n in range(3))
    create(client, GLOBEX, session_id="globex-1")
    services = services_of(client)
    commit_turn(services, f"acme.{mine[1]}", 1)  # a tenant's chosen id is stored as tenant.id
    commit_turn(services, f"acme.{mine[1]}", 2)

    first = client.get("/v1/sessions?limit=2", headers=bearer(ACME)).json()
    rest = client.get(
        f"/v1/sessions?limit=2&cursor={first['next_cursor']}", headers=bearer(ACME)
    ).json()
    done = client.get("/v1/sessions?state=completed", headers=bearer(ACME)).json()

    assert [s["session_id"] for s in first["sessions"]] == mine[:2]
    assert [s["session_id"] for s in rest["sessions"]] == mine[2:]
    assert rest["next_cursor"] is None
    assert [(s["session_id"], s["turns_succeeded"]) for s in done["sessions"]] == [(mine[1], 2)]
    bad = client.get("/v1/sessions?state=sleeping", headers=bearer(ACME))
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "state"


def test_without_tokens_the_api_is_open(make_client: MakeClient) -> None:
    client = make_client(tokens=None)

    answer = client.post("/v1/sessions", json=spec_body("a room"))

    assert answer.status_code == 201
    assert "?" not in answer.json()["gallery_url"]  # nothing to sign
    assert (
        client.get("/v1/sessions").json()["sessions"][0]["session_id"]
        == answer.json()["session_id"]
    )


def test_tokens_and_the_api_key_never_appear_in_answers(client: TestClient) -> None:
    sid = create(client, webhook_url="https://hooks.example/eq")
    texts = [
        client.get(f"/v1/sessions/{sid}", headers=bearer(ACME)).text,
        client.get("/v1/sessions", headers=bearer(ACME)).text,
        client.get("/openapi.json").text,
        client.post("/v1/sessions", json={}, headers=bearer(ACME)).text,
        client.get(f"/ui/sessions/{sid}", headers=bearer(ACME)).text,
    ]
    stored = b"".join(
        services_of(client).repo.store.get(k) for k in services_of(client).repo.store.list("")
    )

    for secret in (ACME, GLOBEX):
        assert all(secret not in text for text in texts)
        assert secret.encode() not in stored


REQUEST_RE = re.compile(r"`(GET|POST) (/v1/\S+)(?: (\{.*?\}))?`")


def follow_http(client: TestClient, message: str, prompt: str) -> list[Any]:
    """Make every request a 409's message recommends, in order; each must succeed."""
    answers: list[Any] = []
    new_sid = ""
    for method, path, body in REQUEST_RE.findall(message):
        path = path.replace("NEW_SID", new_sid)
        payload = json.loads(body.replace("PROMPT", prompt)) if body else None
        answer = client.request(method, path, json=payload, headers=bearer(ACME))
        assert answer.status_code < 300, (method, path, answer.text)
        if path.endswith("/fork"):
            new_sid = answer.json()["session_id"]
        answers.append(answer.json())
    assert answers, f"no request in {message!r}"
    return answers


def test_cancelling_a_completed_session_is_409_recommending_a_request_that_works(
    client: TestClient, sink: MemorySink
) -> None:
    sid = create(client)
    commit_turn(services_of(client), sid, 1)
    commit_turn(services_of(client), sid, 2)

    answer = client.post(f"/v1/sessions/{sid}/cancel", headers=bearer(ACME))

    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["kind"] == "invalid_state"
    assert "is completed: nothing is left to cancel" in error["message"]
    assert f'`POST /v1/sessions/{sid}/turns {{"prompt": "PROMPT"}}`' in error["message"]
    assert not services_of(client).repo.is_cancelled(sid)
    assert sink.events == []
    doc = client.get(f"/v1/sessions/{sid}", headers=bearer(ACME)).json()
    assert doc["state"] == SessionState.COMPLETED
    [added] = follow_http(client, error["message"], "add a lamp")
    assert added["index"] == 3


def test_retrying_a_succeeded_turn_is_409_naming_the_fork_that_redoes_it_by_the_callers_id(
    client: TestClient,
) -> None:
    sid = create(client, session_id="room-1")  # stored as acme.room-1
    commit_turn(services_of(client), f"acme.{sid}", 1)
    commit_turn(services_of(client), f"acme.{sid}", 2)

    answer = client.post(f"/v1/sessions/{sid}/retry", json={"turn": 2}, headers=bearer(ACME))

    assert answer.status_code == 409
    message = answer.json()["error"]["message"]
    assert f'`POST /v1/sessions/{sid}/fork {{"at": 1}}`' in message
    assert "acme." not in message and "editqueue " not in message
    forked, added = follow_http(client, message, "paint it blue")
    assert forked["forked_from"] == sid and added["index"] == 2


@pytest.mark.parametrize(
    ("history", "keep_last"),
    [("first+last:1", 1), ({"anchor": "first", "keep_last": 3}, 3), ("full", None)],
)
def test_fork_takes_a_history_policy_as_a_spec_does(
    client: TestClient, history: object, keep_last: int | None
) -> None:
    sid = create(client, history={"anchor": "first", "keep_last": 2})
    commit_turn(services_of(client), sid, 1)

    answer = client.post(
        f"/v1/sessions/{sid}/fork", json={"at": 1, "history": history}, headers=bearer(ACME)
    )

    assert answer.status_code == 201, answer.text
    record = services_of(client).repo.session(answer.json()["session_id"])
    assert record.history.keep_last == keep_last


def test_fork_with_a_bad_history_is_422_naming_the_field(client: TestClient) -> None:
    sid = create(client)
    commit_turn(services_of(client), sid, 1)

    answer = client.post(
        f"/v1/sessions/{sid}/fork", json={"at": 1, "history": "last:2"}, headers=bearer(ACME)
    )

    assert answer.status_code == 422
    assert answer.json()["error"]["fields"][0]["field"] == "history"
    assert list(services_of(client).repo.session_ids()) == [sid]


def test_the_tier_travels_over_http_and_a_tier_the_model_lacks_is_422(
    client: TestClient, enqueuer: RecordingEnqueuer
) -> None:
    body = spec_body("a room", tier="batch")

    answer = client.post("/v1/sessions", json=body, headers=bearer(ACME))

    assert answer.status_code == 201
    sid = answer.json()["session_id"]
    assert client.get(f"/v1/sessions/{sid}", headers=bearer(ACME)).json()["tier"] == "batch"
    assert enqueuer.calls == []  # a batch-tier turn waits for the next wave, not the broker
    due = services_of(client).coord.batch_due()
    assert list(due) == [(sid, 1)] and due[(sid, 1)][0] == 1  # attempt 1
    refused = client.post(
        "/v1/sessions",
        json=spec_body("a room", tier="flex", model="gemini-3-pro-image"),
        headers=bearer(ACME),
    )
    assert refused.status_code == 422
    assert "not offered in the flex tier" in refused.json()["error"]["message"]


def test_the_transport_travels_over_http_and_an_unknown_one_is_422_naming_the_field(
    client: TestClient,
) -> None:
    answer = client.post(
        "/v1/sessions", json=spec_body("a room", transport="interactions"), headers=bearer(ACME)
    )

    assert answer.status_code == 201
    sid = answer.json()["session_id"]
    view = client.get(f"/v1/sessions/{sid}", headers=bearer(ACME)).json()
    assert view["transport"] == "interactions"
    refused = client.post(
        "/v1/sessions", json=spec_body("a room", transport="carrier-pigeon"), headers=bearer(ACME)
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["field"] == "transport"
