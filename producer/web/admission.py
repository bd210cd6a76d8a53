"""Who gets in: a limit on requests in flight (503 + Retry-After past it) and slow-client deadlines.

`ConcurrencyLimitMiddleware` answers 503 past `EDITQUEUE_API_MAX_CONCURRENCY` requests in flight
at once or `EDITQUEUE_API_MAX_BODY_BYTES_IN_FLIGHT` body bytes (bodies are held whole in memory),
before any body is read, so a flood costs a few bytes each; `/healthz` is never counted.
`HeaderDeadlineProtocol` is uvicorn's h11 protocol with a deadline for a request's head: a client
trickling header bytes (each byte resets uvicorn's keep-alive timer) is disconnected after
`EDITQUEUE_API_HEADER_TIMEOUT_S`. Body deadlines live in `body_limit.py`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from producer.web.asgi import error_document, header, send_json
from producer.web.body_limit import BODY_METHODS

RETRY_AFTER_S = 1
UNCOUNTED_PATHS = frozenset({"/healthz"})


class ConcurrencyLimitMiddleware:
    """At most `limit` requests in flight, and bodies of at most `body_budget` bytes in all
    (a request is counted at its declared Content-Length, or at `max_body` when it declares
    none); the rest are told to come back. One request alone is always let in."""

    def __init__(self, app: ASGIApp, limit: int, body_budget: int, max_body: int) -> None:
        self.app = app
        self.limit, self.body_budget, self.max_body = limit, body_budget, max_body
        self.in_flight = 0
        self.body_bytes = 0

    def _refusal(self, size: int) -> str | None:
        if self.in_flight >= self.limit:
            return (
                f"the server is at its limit of {self.limit} requests in flight "
                "(EDITQUEUE_API_MAX_CONCURRENCY)"
            )
        if self.in_flight and self.body_bytes + size > self.body_budget:
            return (
                f"the server is at its limit of {self.body_budget:,} body bytes in flight "
                "(EDITQUEUE_API_MAX_BODY_BYTES_IN_FLIGHT)"
            )
        return None

    def _size(self, scope: Scope) -> int:
        if scope["method"] not in BODY_METHODS:
            return 0
        declared = header(scope, b"content-length")
        return int(declared) if declared and declared.isdigit() else self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return
        size = min(self._size(scope), self.max_body)  # past max_body it is refused unread
        refusal = self._refusal(size)
        if refusal is not None:
            message = f"{refusal}; retry in {RETRY_AFTER_S} s"
            headers = [("retry-after", str(RETRY_AFTER_S)), ("connection", "close")]
            await send_json(send, 503, error_document("overloaded", message), headers)
            return
        self.in_flight += 1  # one event loop: no lock needed
        self.body_bytes += size
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.body_bytes -= size


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request head is later than
    `timeout_s` (set per server by `header_deadline_protocol`)."""

    timeout_s: float = 10.0
    _deadline: asyncio.TimerHandle | None = None
    _waiting_after: object = None  # the cycle before the head we wait for

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._waiting_after = self.cycle
        self._deadline = self.loop.call_later(self.timeout_s, self._late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _late(self) -> None:
        self._deadline = None
        if self.cycle is self._waiting_after and not self.transport.is_closing():
            self.transport.close()  # no request head within the deadline

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not self._waiting_after:
            self._disarm()  # the head arrived

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def header_deadline_protocol(timeout_s: float) -> type[H11Protocol]:
    """`HeaderDeadlineProtocol` with this server's deadline for a request head."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"timeout_s": timeout_s})
