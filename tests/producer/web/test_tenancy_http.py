"""Client-chosen ids are scoped by tenant: no existence oracle; operators see every session."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from producer import submission
from producer.specs import LoadedSpec
from tests.producer.conftest import spec_of
from tests.producer.web.conftest import (
    ACME,
    GLOBEX,
    TOKENS,
    MakeClient,
    bearer,
    create,
    services_of,
    spec_body,
)

OPERATOR = "operator-token-0123456789abcdef"


def test_another_tenants_id_is_no_collision_and_reveals_nothing(client: TestClient) -> None:
    create(client, ACME, session_id="alpha-room")

    probe = client.get("/v1/sessions/alpha-room", headers=bearer(GLOBEX))
    theirs = client.post(
        "/v1/sessions", json=spec_body("b", session_id="alpha-room"), headers=bearer(GLOBEX)
    )
    again = client.post(
        "/v1/sessions", json=spec_body("c", session_id="alpha-room"), headers=bearer(ACME)
    )

    assert probe.status_code == 404
    assert theirs.status_code == 201 and theirs.json()["session_id"] == "alpha-room"
    assert again.status_code == 409
    assert again.json()["error"]["message"].startswith("session id alpha-room already exists")
    repo = services_of(client).repo
    assert {repo.session(s).tenant for s in ("acme.alpha-room", "globex.alpha-room")} == {
        "acme",
        "globex",
    }


def test_a_chosen_id_cannot_shadow_one_of_the_tenants_generated_ids(client: TestClient) -> None:
    generated = create(client, ACME)

    answer = client.post(
        "/v1/sessions", json=spec_body("x", session_id=generated), headers=bearer(ACME)
    )

    assert answer.status_code == 409


def test_an_operator_token_sees_every_tenants_sessions_and_the_clis(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = make_client(tokens=f"{TOKENS},{OPERATOR}=ops", operator_tenant="ops")
    create(client, ACME, session_id="alpha-room")
    services = services_of(client)
    cli_sid = submission.submit_many(
        services,
        [LoadedSpec(spec_of("from the cli"), tmp_path, "cli")],
        tenant="cli",
        scope_ids=False,
    )[0]

    listed = client.get("/v1/sessions", headers=bearer(OPERATOR)).json()
    one = client.get("/v1/sessions/acme.alpha-room", headers=bearer(OPERATOR))
    acme_view = client.get("/v1/sessions", headers=bearer(ACME)).json()

    assert {s["session_id"] for s in listed["sessions"]} == {"acme.alpha-room", cli_sid}
    assert one.status_code == 200 and one.json()["session_id"] == "acme.alpha-room"
    assert [s["session_id"] for s in acme_view["sessions"]] == ["alpha-room"]
