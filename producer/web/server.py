"""`editqueue api`: build the services and serve the app with uvicorn.

With no `EDITQUEUE_API_TOKENS` the API has no authentication, so it listens on loopback only,
whatever `--host` says, and says so.
"""

from __future__ import annotations

import math

import click
import uvicorn

from producer.web.admission import header_deadline_protocol
from producer.web.app import create_app
from producer.web.auth import TokenTable
from producer.web.idempotency import Idempotency, idempotency_store_for
from shared import metrics_http, tracing
from shared.config import Settings
from shared.services import build_services
from shared.webhooks import allowed_networks, signing_key

KEEP_ALIVE_S = 5
CONNECTIONS_PER_SLOT = 8
BACKLOG = 512
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
FALLBACK_HOST = "127.0.0.1"
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


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


def public_url(settings: Settings, host: str, port: int) -> str:
    """The base of the URLs answers carry: `EDITQUEUE_API_PUBLIC_URL`, else where we listen."""
    if settings.http_public_url:
        return settings.http_public_url
    if host in WILDCARD_HOSTS:  # not an address a client can use: name this machine's loopback
        click.echo(
            f"EDITQUEUE_API_PUBLIC_URL is unset: links in answers use http://127.0.0.1:{port}; "
            "set it to the address clients use",
            err=True,
        )
        host = FALLBACK_HOST
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def start_observability(settings: Settings) -> None:
    """/metrics on EDITQUEUE_METRICS_PORT (apart from the API's port and tokens), log format."""
    if settings.metrics_port:
        metrics_http.use_multiprocess(settings)
        metrics_http.serve(settings.metrics_port)
    tracing.configure_logs(settings)


def serve(settings: Settings, host: str, port: int) -> None:
    """Run the API until interrupted (SIGTERM: in-flight requests get `http_shutdown_s`)."""
    tokens = TokenTable.from_settings(settings)
    signing_key(settings)  # refuse a malformed EDITQUEUE_WEBHOOK_SECRET at start
    allowed_networks(settings)  # and a malformed EDITQUEUE_WEBHOOK_ALLOW_CIDRS
    host, notice = bind_host(host, tokens)
    if notice:
        click.echo(notice, err=True)
    start_observability(settings)
    settings = settings.model_copy(update={"http_public_url": public_url(settings, host, port)})
    services = build_services(settings)
    keys = Idempotency(idempotency_store_for(settings))
    app = create_app(services, tokens, keys)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        server_header=False,
        log_config=None,  # uvicorn's records go through the root handler: EDITQUEUE_LOG_FORMAT
        http=header_deadline_protocol(settings.http_header_timeout_s),
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=math.ceil(settings.http_shutdown_s),
        # Connections beyond this are answered 503 by uvicorn itself; requests in flight are
        # limited lower by ConcurrencyLimitMiddleware (which says Retry-After).
        limit_concurrency=settings.http_max_concurrency * CONNECTIONS_PER_SLOT,
        backlog=BACKLOG,
    )
