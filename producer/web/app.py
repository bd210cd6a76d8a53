"""The FastAPI application: routes, the one error shape, body limit and idempotency keys."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from producer.web import gallery, routes
from producer.web.admission import ConcurrencyLimitMiddleware
from producer.web.auth import TokenTable
from producer.web.body_limit import BodyLimitMiddleware
from producer.web.errors import install_handlers
from producer.web.idempotency import Idempotency
from producer.web.idempotent import IdempotencyMiddleware
from producer.web.schemas import CreateSession, Health, HttpTurn
from shared.services import Services
from shared.webhooks import Resolver, system_resolver

TITLE = "editqueue"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"  # `editqueue api` sets its own address when unset
VERSION = "1"
DESCRIPTION = (
    "Multi-turn Gemini image-editing sessions as durable jobs. Every POST takes an "
    "`Idempotency-Key`; events are POSTed to `webhook_url`, signed per Standard Webhooks."
)


def create_app(
    services: Services,
    tokens: TokenTable,
    keys: Idempotency,
    *,
    resolver: Resolver = system_resolver,
) -> FastAPI:
    """The API over `services`; `tokens` decide who may call it, `keys` hold idempotency keys.

    `resolver` resolves webhook hosts at submit (tests pass a stub: no lookup leaves the host).
    """
    settings = services.settings
    app = FastAPI(title=TITLE, version=VERSION, description=DESCRIPTION, redoc_url=None)
    app.state.services = services
    app.state.tokens = tokens
    app.state.resolver = resolver
    app.state.public_url = settings.http_public_url or DEFAULT_PUBLIC_URL
    install_handlers(app)
    app.include_router(routes.router)
    app.include_router(gallery.router)

    @app.get("/healthz", response_model=Health, tags=["health"])
    async def healthz() -> Health:
        """The server is up (it does not check Redis or the store); answered on the event loop,
        so busy worker threads do not delay it."""
        return Health()

    app.add_middleware(IdempotencyMiddleware, keys=keys, tokens=tokens)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.http_max_body_bytes,
        timeout_s=settings.http_body_timeout_s,
    )
    app.add_middleware(
        ConcurrencyLimitMiddleware,
        limit=settings.http_max_concurrency,
        body_budget=settings.http_max_body_bytes_in_flight,
        max_body=settings.http_max_body_bytes,
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the bodies the session routes read themselves (CLI validation)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        _, defs = models_json_schema(
            [(CreateSession, "validation"), (HttpTurn, "validation")],
            ref_template="#/components/schemas/{model}",
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(defs.get("$defs", {}))
        app.openapi_schema = schema
    return app.openapi_schema
