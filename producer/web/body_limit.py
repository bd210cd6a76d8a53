"""Refuse oversized request bodies (413) before anything parses them."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from producer.web.asgi import BodyTooLarge, error_document, header, read_body, replay, send_json

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyLimitMiddleware:
    """Checks Content-Length first, then counts the bytes of bodies sent without one."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        try:
            body = await read_body(receive, self.max_bytes)
        except BodyTooLarge:
            await self._refuse(send)
            return
        await self.app(scope, replay(body, receive), send)

    async def _refuse(self, send: Send) -> None:
        message = f"the request body is over the {self.max_bytes:,}-byte limit; send less"
        await send_json(send, 413, error_document("too_large", message), [("connection", "close")])
