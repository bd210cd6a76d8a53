"""`Idempotency-Key` on every POST: the first successful answer is replayed for the same body.

The same key with another body (or while the first request still runs) is refused with 409.
Keys are scoped by tenant and kept 24 h; a request that did not succeed frees its key.
"""

from __future__ import annotations

import base64
import re

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producer.web.asgi import error_document, header, read_body, replay, send_json
from producer.web.auth import TokenTable
from producer.web.idempotency import Claim, Entry, Idempotency, Verdict, fingerprint
from shared.errors import EditQueueError

KEY_HEADER = b"idempotency-key"
KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")
KEPT_HEADERS = frozenset({"content-type", "location"})
UNBOUNDED = 1 << 62  # the body limit middleware runs first


class IdempotencyMiddleware:
    """Claims the key before the route runs and keeps the route's 2xx answer."""

    def __init__(self, app: ASGIApp, keys: Idempotency, tokens: TokenTable) -> None:
        self.app = app
        self.keys = keys
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = header(scope, KEY_HEADER) if _is_api_post(scope) else None
        tenant = self.tokens.tenant_for(header(scope, b"authorization"))
        if key is None or tenant is None:  # no key, or the route answers 401
            await self.app(scope, receive, send)
            return
        if not KEY_RE.fullmatch(key):
            message = "Idempotency-Key must be 1-255 visible ASCII characters"
            await send_json(send, 422, error_document("invalid_spec", message, "Idempotency-Key"))
            return
        body = await read_body(receive, UNBOUNDED)
        fp = fingerprint("POST", scope["path"], body)
        try:
            verdict, held = await run_in_threadpool(self.keys.begin, tenant.name or "", key, fp)
        except EditQueueError as exc:
            await send_json(send, 503, error_document(exc.kind, f"{exc.message}; try again"))
            return
        if isinstance(held, Claim):
            await self._run(scope, replay(body, receive), send, held)
        else:
            await _answer_taken(send, verdict, held)

    async def _run(self, scope: Scope, receive: Receive, send: Send, claim: Claim) -> None:
        recorder = _Recorder(send)
        try:
            await self.app(scope, receive, recorder.send)
        finally:
            if 200 <= recorder.status < 300:
                body = base64.b64encode(recorder.body).decode()
                await run_in_threadpool(
                    self.keys.complete, claim, recorder.status, recorder.headers, body
                )
            else:
                await run_in_threadpool(self.keys.release, claim)


def _is_api_post(scope: Scope) -> bool:
    return bool(
        scope["type"] == "http" and scope["method"] == "POST" and scope["path"].startswith("/v1/")
    )


async def _answer_taken(send: Send, verdict: Verdict, entry: Entry) -> None:
    if verdict is Verdict.REPLAY and entry.status is not None:
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in entry.headers]
        raw.append((b"idempotent-replayed", b"true"))
        await send({"type": "http.response.start", "status": entry.status, "headers": raw})
        await send({"type": "http.response.body", "body": base64.b64decode(entry.body)})
        return
    if verdict is Verdict.MISMATCH:
        message = "this Idempotency-Key was used with another request body; use a new key"
        await send_json(send, 409, error_document("idempotency_key_reused", message))
        return
    message = "a request with this Idempotency-Key is still running; retry in a moment"
    await send_json(
        send, 409, error_document("idempotency_key_in_use", message), [("retry-after", "1")]
    )


class _Recorder:
    """Passes the answer through and keeps a copy of it."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.body = b""

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            for key, value in message.get("headers", []):
                name = bytes(key).decode("latin-1").lower()
                if name in KEPT_HEADERS:
                    self.headers.append((name, bytes(value).decode("latin-1")))
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
        await self._send(message)
