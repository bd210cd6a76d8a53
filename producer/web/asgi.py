"""Small ASGI helpers for the middlewares: headers, whole bodies, replays, JSON answers."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    """The request body passed the limit while it was read."""


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (latin-1), or None."""
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; BodyTooLarge as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that yields `body` once, then defers to the original (for disconnects)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def send_json(
    send: Send, status: int, document: Any, headers: list[tuple[str, str]] | None = None
) -> None:
    """Answer with a JSON body."""
    body = json.dumps(document).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers or []]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def error_document(kind: str, message: str, field: str | None = None) -> dict[str, Any]:
    """The error shape of `producer.web.errors`, for answers sent before any route runs."""
    fields = [{"field": field, "message": message}] if field else []
    return {"error": {"kind": kind, "message": message, "fields": fields}}
