"""Refuse oversized request bodies (413) before anything parses them, and slow ones (408)."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from producer.web.asgi import BodyTooLarge, error_document, header, read_body, replay, send_json

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyLimitMiddleware:
    """Checks Content-Length first, then counts the bytes of bodies sent without one; the whole
    body must arrive within `timeout_s` (a client trickling it would hold a slot forever)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                body = await read_body(receive, self.max_bytes)
        except BodyTooLarge:
            await self._refuse(send)
            return
        except TimeoutError:
            message = (
                f"the request body did not arrive within {self.timeout_s:g} s "
                "(EDITQUEUE_API_BODY_TIMEOUT_S); send it at once"
            )
            headers = [("connection", "close")]
            await send_json(send, 408, error_document("request_timeout", message), headers)
            return
        await self.app(scope, replay(body, receive), send)

    async def _refuse(self, send: Send) -> None:
        message = f"the request body is over the {self.max_bytes:,}-byte limit; send less"
        await send_json(send, 413, error_document("too_large", message), [("connection", "close")])
