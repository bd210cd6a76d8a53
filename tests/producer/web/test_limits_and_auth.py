"""Bodies over the limit are refused unread; tokens parse strictly; the open mode binds loopback."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from producer.web.auth import OPEN, TokenTable, check_link, link_query, parse_tokens
from producer.web.server import bind_host
from shared.errors import InvalidSpec
from tests.producer.web.conftest import ACME, GLOBEX, TOKENS, MakeClient, bearer, spec_body

WEB = Path(__file__).resolve().parents[3] / "producer" / "web"


def test_a_body_over_the_limit_is_413_before_parsing(make_client: MakeClient) -> None:
    client = make_client(http_max_body_bytes=1000)
    body = spec_body("x" * 2000)

    declared = client.post("/v1/sessions", json=body, headers=bearer(ACME))

    assert declared.status_code == 413
    assert declared.json()["error"]["kind"] == "too_large"


def test_a_chunked_body_is_counted_and_refused_too(make_client: MakeClient) -> None:
    client = make_client(http_max_body_bytes=1000)

    def chunks() -> Iterator[bytes]:
        yield b'{"turns": [{"prompt": "'
        for _ in range(50):
            yield b"x" * 100
        yield b'"}]}'

    answer = client.post(
        "/v1/sessions",
        content=chunks(),
        headers={**bearer(ACME), "content-type": "application/json"},
    )

    assert answer.status_code == 413


def test_a_body_under_the_limit_passes(make_client: MakeClient) -> None:
    client = make_client(http_max_body_bytes=1000)
    assert (
        client.post("/v1/sessions", json=spec_body("a room"), headers=bearer(ACME)).status_code
        == 201
    )


def test_tokens_map_to_tenants() -> None:
    table = TokenTable(parse_tokens(TOKENS))

    assert table.tenant_for(f"Bearer {ACME}").name == "acme"  # type: ignore[union-attr]
    assert table.tenant_for(f"bearer {GLOBEX}").name == "globex"  # type: ignore[union-attr]
    assert table.tenant_for(f"Basic {ACME}") is None
    assert table.tenant_for(None) is None
    assert TokenTable({}).tenant_for(None) is OPEN


@pytest.mark.parametrize(
    "text", ["short=acme", "0123456789abcdefXYZ", "0123456789abcdefXYZ=bad tenant", "=acme"]
)
def test_malformed_tokens_are_refused_without_quoting_them(text: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_tokens(text)

    assert "EDITQUEUE_API_TOKENS entry 1" in str(caught.value)
    token = text.partition("=")[0]
    if token:
        assert token not in str(caught.value)


def test_a_gallery_link_opens_for_its_tenant_until_it_expires() -> None:
    table = TokenTable(parse_tokens(TOKENS))
    acme = table.tenant_for(f"Bearer {ACME}")
    assert acme is not None
    query = link_query(acme, "s1", now=1000)

    assert check_link(table, "s1", query, now=2000) == acme
    assert check_link(table, "s2", query, now=2000) is None
    assert check_link(table, "s1", {**query, "tenant": "globex"}, now=2000) is None
    assert check_link(table, "s1", {**query, "sig": query["sig"][:-1] + "A"}, now=2000) is None
    assert check_link(table, "s1", query, now=int(query["expires"]) + 1) is None
    assert check_link(table, "s1", {}, now=2000) is None


@pytest.mark.parametrize(
    ("tokens", "requested", "host", "notice"),
    [
        ({}, "0.0.0.0", "127.0.0.1", "listens on 127.0.0.1 only"),
        ({}, "127.0.0.1", "127.0.0.1", "no authentication"),
        ({ACME: "acme"}, "0.0.0.0", "0.0.0.0", None),
    ],
)
def test_without_tokens_the_server_binds_loopback_and_says_so(
    tokens: dict[str, str], requested: str, host: str, notice: str | None
) -> None:
    bound, told = bind_host(requested, TokenTable(tokens))

    assert bound == host
    assert (told is None) if notice is None else (notice in (told or ""))


def test_no_http_api_module_imports_the_worker() -> None:
    modules = sorted(WEB.glob("*.py"))
    assert len(modules) > 8
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not [n for n in names if n.split(".")[0] == "worker"], path.name


def test_the_public_url_is_the_setting_else_an_address_clients_can_use() -> None:
    from producer.web.server import public_url
    from shared.config import load_settings

    configured = load_settings(http_public_url="https://eq.example.test")
    unset = load_settings()

    assert public_url(configured, "0.0.0.0", 8000) == "https://eq.example.test"
    assert public_url(unset, "127.0.0.1", 8123) == "http://127.0.0.1:8123"
    assert public_url(unset, "0.0.0.0", 8000) == "http://127.0.0.1:8000"
    assert public_url(unset, "::1", 8000) == "http://[::1]:8000"
