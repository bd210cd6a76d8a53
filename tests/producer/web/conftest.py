"""HTTP API fixtures: the FastAPI app over in-memory services, clients per tenant."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from producer.web.app import create_app
from producer.web.auth import TokenTable, parse_tokens
from shared.events import MemorySink
from shared.idempotency import Idempotency, MemoryIdempotencyStore
from shared.runtime import Services
from tests.producer.conftest import RecordingEnqueuer, make_services

ACME = "acme-token-0123456789abcdef"
GLOBEX = "globex-token-0123456789abcdef"
TOKENS = f"{ACME}=acme,{GLOBEX}=globex"
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()

MakeClient = Callable[..., TestClient]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def spec_body(*prompts: str, **fields: Any) -> dict[str, Any]:
    return {"image_size": "1K", "turns": [{"prompt": p} for p in prompts], **fields}


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def make_client(
    tmp_path: Path, enqueuer: RecordingEnqueuer, sink: MemorySink
) -> Callable[..., TestClient]:
    """A client for an app with the given settings (tokens and webhook secret by default)."""

    def build(tokens: str | None = TOKENS, **settings: Any) -> TestClient:
        base = make_services(tmp_path, enqueuer)
        update: dict[str, Any] = {
            "api_tokens": SecretStr(tokens) if tokens is not None else None,
            "webhook_secret": SecretStr(SECRET),
            **settings,
        }
        services = dataclasses.replace(
            base, settings=base.settings.model_copy(update=update), events=sink
        )
        table = TokenTable(parse_tokens(tokens) if tokens else {})
        app = create_app(services, table, Idempotency(MemoryIdempotencyStore()))
        client = TestClient(app, raise_server_exceptions=False)
        client.app_services = services  # type: ignore[attr-defined]
        return client

    return build


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


def services_of(client: TestClient) -> Services:
    services: Services = client.app_services  # type: ignore[attr-defined]
    return services


def create(client: TestClient, token: str = ACME, **fields: Any) -> str:
    body = spec_body("a room", "paint it sage", **fields)
    answer = client.post("/v1/sessions", json=body, headers=bearer(token))
    assert answer.status_code == 201, answer.text
    sid: str = answer.json()["session_id"]
    return sid
