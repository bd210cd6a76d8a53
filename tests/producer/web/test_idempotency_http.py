"""`Idempotency-Key` over HTTP: same key and body replay the first answer; another body is 409."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.producer.conftest import RecordingEnqueuer, commit_turn
from tests.producer.web.conftest import ACME, GLOBEX, bearer, create, services_of, spec_body


def keyed(token: str, key: str) -> dict[str, str]:
    return {**bearer(token), "Idempotency-Key": key}


def test_the_same_key_and_body_return_the_first_answer_and_create_once(
    client: TestClient, enqueuer: RecordingEnqueuer
) -> None:
    body = spec_body("a room", "paint it")

    first = client.post("/v1/sessions", json=body, headers=keyed(ACME, "order-17"))
    again = client.post("/v1/sessions", json=body, headers=keyed(ACME, "order-17"))

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert "idempotent-replayed" not in first.headers
    assert list(services_of(client).repo.session_ids()) == [first.json()["session_id"]]
    assert len(enqueuer.calls) == 1


def test_json_is_compared_by_value_not_by_bytes(client: TestClient) -> None:
    headers = {**keyed(ACME, "k"), "content-type": "application/json"}
    first = client.post("/v1/sessions", content=b'{"turns":[{"prompt":"a"}]}', headers=headers)
    again = client.post(
        "/v1/sessions", content=b'{ "turns" : [ { "prompt" : "a" } ] }', headers=headers
    )

    assert again.json()["session_id"] == first.json()["session_id"]


def test_the_same_key_with_another_body_is_409(client: TestClient) -> None:
    first = client.post("/v1/sessions", json=spec_body("a room"), headers=keyed(ACME, "k1"))

    other = client.post("/v1/sessions", json=spec_body("a kitchen"), headers=keyed(ACME, "k1"))

    assert first.status_code == 201
    assert other.status_code == 409
    assert other.json()["error"]["kind"] == "idempotency_key_reused"
    assert len(list(services_of(client).repo.session_ids())) == 1


def test_keys_belong_to_one_tenant(client: TestClient) -> None:
    body = spec_body("a room")
    mine = client.post("/v1/sessions", json=body, headers=keyed(ACME, "k1"))
    theirs = client.post("/v1/sessions", json=body, headers=keyed(GLOBEX, "k1"))

    assert theirs.status_code == 201
    assert theirs.json()["session_id"] != mine.json()["session_id"]


def test_a_request_that_failed_frees_its_key(client: TestClient) -> None:
    bad = client.post("/v1/sessions", json={"turns": []}, headers=keyed(ACME, "k1"))
    good = client.post("/v1/sessions", json=spec_body("a room"), headers=keyed(ACME, "k1"))

    assert (bad.status_code, good.status_code) == (422, 201)


def test_appending_with_a_key_twice_adds_one_turn(client: TestClient) -> None:
    sid = create(client)
    commit_turn(services_of(client), sid, 1)
    headers = keyed(ACME, "turn-3")

    first = client.post(f"/v1/sessions/{sid}/turns", json={"prompt": "a lamp"}, headers=headers)
    again = client.post(f"/v1/sessions/{sid}/turns", json={"prompt": "a lamp"}, headers=headers)

    assert first.json()["index"] == again.json()["index"] == 3
    assert services_of(client).repo.snapshot(sid).last_index == 3


def test_a_malformed_key_is_422(client: TestClient) -> None:
    answer = client.post("/v1/sessions", json=spec_body("a"), headers=keyed(ACME, "has space"))

    assert answer.status_code == 422
    assert answer.json()["error"]["fields"][0]["field"] == "Idempotency-Key"


def test_without_a_token_the_key_is_not_taken(client: TestClient) -> None:
    anonymous = client.post("/v1/sessions", json=spec_body("a"), headers={"Idempotency-Key": "k"})
    real = client.post("/v1/sessions", json=spec_body("b"), headers=keyed(ACME, "k"))

    assert (anonymous.status_code, real.status_code) == (401, 201)
