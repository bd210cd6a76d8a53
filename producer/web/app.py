"""The FastAPI application: routes, the one error shape, body limit and idempotency keys."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from producer.web import gallery, routes
from producer.web.auth import TokenTable
from producer.web.body_limit import BodyLimitMiddleware
from producer.web.errors import install_handlers
from producer.web.idempotent import IdempotencyMiddleware
from producer.web.schemas import CreateSession, Health, HttpTurn
from shared.idempotency import Idempotency
from shared.runtime import Services

TITLE = "editqueue"
VERSION = "1"
DESCRIPTION = (
    "Multi-turn Gemini image-editing sessions as durable jobs. Every POST takes an "
    "`Idempotency-Key`; events are POSTed to `webhook_url`, signed per Standard Webhooks."
)


def create_app(services: Services, tokens: TokenTable, keys: Idempotency) -> FastAPI:
    """The API over `services`; `tokens` decide who may call it, `keys` hold idempotency keys."""
    app = FastAPI(title=TITLE, version=VERSION, description=DESCRIPTION, redoc_url=None)
    app.state.services = services
    app.state.tokens = tokens
    install_handlers(app)
    app.include_router(routes.router)
    app.include_router(gallery.router)

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        """The server is up (it does not check Redis or the store)."""
        return Health()

    app.add_middleware(IdempotencyMiddleware, keys=keys, tokens=tokens)
    app.add_middleware(BodyLimitMiddleware, max_bytes=services.settings.api_max_body_bytes)
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
