"""Keeping the API key out of text: every spelling an error body or exception may echo."""

from __future__ import annotations

import base64
import re
from urllib.parse import quote

REDACTED = "[REDACTED]"
MIN_ENCODED_CHARS = 16  # shorter runs could match ordinary text; real keys are ~39 characters
_KEY_PARAM_RE = re.compile(r"([?&](?:key|api_key)=)[^&#\s'\"]+", re.IGNORECASE)


def _base64_forms(secret: str) -> set[str]:
    """The runs of base64 text that encode `secret` wherever it sits in an encoded echo.

    Base64 packs 3 bytes into 4 characters, so the key encodes differently at each of the 3
    byte offsets; at each, the characters made only of key bits are the same whatever bytes
    surround it. Standard and URL-safe alphabets both.
    """
    raw = secret.encode()
    forms: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        start, end = -(-8 * offset // 6), 8 * (offset + len(raw)) // 6
        inner = encoded[start:end]
        if len(inner) >= MIN_ENCODED_CHARS:
            forms |= {inner, inner.replace("+", "-").replace("/", "_")}
    return forms


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` (plain, URL-quoted or base64-encoded, as an
    error body may echo it) and any `key=` URL parameter blanked out."""
    if secret:
        forms = {secret, quote(secret, safe=""), *_base64_forms(secret)}
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, REDACTED)
    return _KEY_PARAM_RE.sub(rf"\1{REDACTED}", text)
