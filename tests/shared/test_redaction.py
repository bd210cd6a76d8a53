"""The API key kept out of text in every spelling an error body or exception may echo."""

from __future__ import annotations

from shared.redaction import redact

SECRET = "AIzaSyFAKE-unit-test-secret_42"


def test_redact_removes_the_secret_and_its_url_encoded_form() -> None:
    secret = "abc/def+ghi"
    text = f"header {secret} and url ?x=1&other=abc%2Fdef%2Bghi"
    assert redact(text, secret) == "header [REDACTED] and url ?x=1&other=[REDACTED]"


def test_redact_removes_a_key_url_parameter_even_without_the_secret() -> None:
    text = "GET https://host/v1beta/models/m:generateContent?key=AIzaLEAK&alt=json"
    assert (
        redact(text, None)
        == "GET https://host/v1beta/models/m:generateContent?key=[REDACTED]&alt=json"
    )


def test_redact_leaves_ordinary_text_alone() -> None:
    assert redact("HTTP 503 UNAVAILABLE: overloaded", SECRET) == "HTTP 503 UNAVAILABLE: overloaded"
