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
from producer.web.idempotency import Idempotency, MemoryIdempotencyStore
from shared.events import MemorySink
from shared.services import Services
from tests.producer.conftest import RecordingEnqueuer, make_services

ACME = "acme-token-0123456789abcdef"
GLOBEX = "globex-token-0123456789abcdef"
TOKENS = f"{ACME}=acme,{GLOBEX}=globex"
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()

MakeClient = Callable[..., TestClient]
# What the stub resolver answers: no test looks a name up in DNS or connects to these.
STUB_DNS = {"hooks.example": ["203.0.113.7"], "inside.example": ["203.0.113.8", "10.1.2.3"]}


def stub_resolver(host: str, port: int) -> list[str]:
    """A resolver that knows only STUB_DNS (an unknown host does not resolve)."""
    if host not in STUB_DNS:
        raise OSError(f"{host} does not resolve (stub)")
    return STUB_DNS[host]


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
            "http_tokens": SecretStr(tokens) if tokens is not None else None,
            "webhook_secret": SecretStr(SECRET),
            "http_public_url": "http://testserver",
            **settings,
        }
        services = dataclasses.replace(
            base, settings=base.settings.model_copy(update=update), events=sink
        )
        operator = services.settings.operator_tenant
        table = TokenTable(parse_tokens(tokens) if tokens else {}, operator)
        app = create_app(
            services, table, Idempotency(MemoryIdempotencyStore()), resolver=stub_resolver
        )
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
