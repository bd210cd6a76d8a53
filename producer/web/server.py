"""`editqueue api`: build the services and serve the app with uvicorn.

With no `EDITQUEUE_API_TOKENS` the API has no authentication, so it listens on loopback only,
whatever `--host` says, and says so.
"""

from __future__ import annotations

import click
import uvicorn

from producer.web.app import create_app
from producer.web.auth import TokenTable
from shared.config import Settings
from shared.idempotency import Idempotency, idempotency_store_for
from shared.runtime import build_services
from shared.webhooks import signing_key

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
FALLBACK_HOST = "127.0.0.1"


def bind_host(requested: str, tokens: TokenTable) -> tuple[str, str | None]:
    """Where to listen, and what to tell the operator about it."""
    if tokens.enabled:
        return requested, None
    if requested in LOOPBACK_HOSTS:
        return requested, (
            f"no EDITQUEUE_API_TOKENS: the API is open (no authentication); "
            f"listening on {requested} only"
        )
    return FALLBACK_HOST, (
        f"no EDITQUEUE_API_TOKENS: not listening on {requested}; the API is open (no "
        f"authentication), so it listens on {FALLBACK_HOST} only. Set "
        "EDITQUEUE_API_TOKENS=token=tenant,... to serve other machines"
    )


def serve(settings: Settings, host: str, port: int) -> None:
    """Run the API until interrupted."""
    tokens = TokenTable.from_settings(settings)
    signing_key(settings)  # refuse a malformed EDITQUEUE_WEBHOOK_SECRET at start
    host, notice = bind_host(host, tokens)
    if notice:
        click.echo(notice, err=True)
    services = build_services(settings)
    keys = Idempotency(idempotency_store_for(settings))
    app = create_app(services, tokens, keys)
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
