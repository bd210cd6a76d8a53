"""`/v1/sessions...`: each route checks the caller, then calls the producer's Python API."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import HttpUrl, TypeAdapter, ValidationError

from producer import sessions, submission
from producer.checks import Problem
from producer.limits import Limits, text_problems
from producer.listing import session_page
from producer.specs import error_problem, validate_data
from producer.web.auth import Tenant
from producer.web.deps import (
    Caller,
    IdempotencyKey,
    SessionId,
    TurnIndex,
    now_s,
    owned,
    services_of,
    shown_id,
)
from producer.web.errors import ErrorBody, problems_error
from producer.web.images import image_response
from producer.web.links import api_image_url, session_links, url
from producer.web.schemas import (
    STORED_ID_PATTERN,
    Accepted,
    Forked,
    ForkSession,
    RetryTurn,
    SessionCreated,
    SessionPage,
    SessionView,
    TurnAdded,
)
from producer.web.uploads import session_images, turn_files
from producer.web.views import session_view, summary
from shared.config import Settings
from shared.errors import SessionExists, WebhookRefused
from shared.ids import scoped_session_id
from shared.models import SessionState
from shared.services import Services
from shared.session_spec import TurnSpec
from shared.webhooks import Resolver, allowed_networks, check_destination, signing_key

router = APIRouter(prefix="/v1", tags=["sessions"])
_URL = TypeAdapter(HttpUrl)
MAX_URL_CHARS = 2000


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in (401, 503, *codes)}


def _body(schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def _webhook(
    value: Any, settings: Settings, resolver: Resolver
) -> tuple[str | None, list[Problem]]:
    if value is None:
        return None, []
    where = ("webhook_url",)
    try:
        parsed = str(_URL.validate_python(value))
    except ValidationError:
        return None, [Problem(where, "must be an http:// or https:// URL")]
    if len(parsed) > MAX_URL_CHARS:
        return None, [Problem(where, f"is over {MAX_URL_CHARS} characters")]
    if signing_key(settings) is None:
        return None, [Problem(where, "this server has no EDITQUEUE_WEBHOOK_SECRET; omit it")]
    try:
        check_destination(parsed, allowed_networks(settings), resolver)
    except WebhookRefused as exc:
        return None, [Problem(where, exc.message)]
    return parsed, []


@router.post(
    "/sessions",
    status_code=201,
    response_model=SessionCreated,
    responses=_errors(409, 413, 422),
    openapi_extra=_body("CreateSession"),
)
def create_session(
    request: Request,
    response: Response,
    payload: Annotated[Any, Body()],
    tenant: Caller,
    idempotency_key: IdempotencyKey = None,
) -> SessionCreated:
    """Store a session (the CLI's spec as JSON, images in base64) and queue its first turn."""
    services = services_of(request)
    data = dict(payload) if isinstance(payload, dict) else payload
    webhook, problems = _webhook(
        data.pop("webhook_url", None) if isinstance(data, dict) else None,
        services.settings,
        request.app.state.resolver,
    )
    limits = submission.limits_of(services)
    with tempfile.TemporaryDirectory(prefix="editqueue-upload-") as tmp:
        folder = Path(tmp)
        if isinstance(data, dict):
            data, found = session_images(data, folder, limits)
            problems += found
        spec, found = validate_data(data, folder, services.settings.model, limits)
        if problems or spec is None:
            raise problems_error(problems + found)
        _refuse_own_generated_id(services, tenant, spec.session_id)
        stored = submission.submit_session(
            services, spec, base_dir=folder, tenant=tenant.name, webhook_url=webhook
        )
    sid = shown_id(tenant, stored)
    links = session_links(request, tenant, sid, now_s())
    response.headers["location"] = links.status
    return SessionCreated(
        session_id=sid,
        state=SessionState.QUEUED,
        status_url=links.status,
        gallery_url=links.gallery,
        urls=links,
    )


@router.get("/sessions", response_model=SessionPage, responses=_errors(422))
def list_sessions(
    request: Request,
    tenant: Caller,
    state: SessionState | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern=STORED_ID_PATTERN, max_length=129)] = None,
) -> SessionPage:
    """The caller's sessions in id order, optionally in one state; paginate with `cursor`."""
    services = services_of(request)
    owner = None if tenant.sees_all else tenant.name
    page = session_page(services, owner=owner, state=state, after=cursor, limit=limit)
    rows = []
    for row in page.rows:
        sid = shown_id(tenant, row.session_id)
        rows.append(summary(row, url(request, "get_session", session_id=sid), sid))
    return SessionPage(sessions=rows, next_cursor=page.next_after)


@router.get("/sessions/{session_id}", response_model=SessionView, responses=_errors(404, 422))
def get_session(request: Request, session_id: SessionId, tenant: Caller) -> SessionView:
    """The status document, with each turn's image URL and the session's links."""
    services = services_of(request)
    stored, record = owned(services, tenant, session_id)
    status = sessions.session_status(services, stored)
    links = session_links(request, tenant, session_id, now_s())
    return session_view(
        status, record, links, lambda n: api_image_url(request, session_id, n), session_id
    )


@router.post(
    "/sessions/{session_id}/turns",
    status_code=201,
    response_model=TurnAdded,
    responses=_errors(404, 409, 413, 422),
    openapi_extra=_body("HttpTurn"),
)
def append_turn(
    request: Request,
    session_id: SessionId,
    payload: Annotated[Any, Body()],
    tenant: Caller,
    idempotency_key: IdempotencyKey = None,
) -> TurnAdded:
    """Add a turn after the last one; it runs once its predecessor is committed."""
    services = services_of(request)
    stored, _ = owned(services, tenant, session_id)
    with tempfile.TemporaryDirectory(prefix="editqueue-upload-") as tmp:
        turn = _turn(payload, Path(tmp), submission.limits_of(services))
        index = submission.append_turn(services, stored, turn, Path(tmp))
    status_url = url(request, "get_session", session_id=session_id)
    return TurnAdded(session_id=session_id, index=index, status_url=status_url)


def _turn(payload: Any, folder: Path, limits: Limits) -> TurnSpec:
    data = dict(payload) if isinstance(payload, dict) else payload
    problems: list[Problem] = []
    if isinstance(data, dict):
        if isinstance(data.get("image_size"), int):  # `512` means "512", as in spec files
            data["image_size"] = str(data["image_size"])
        data, problems = turn_files({"images": [], **data}, folder, (), limits)
    if problems:
        raise problems_error(problems)
    try:
        turn = TurnSpec.model_validate(data)
    except ValidationError as exc:
        raise problems_error([error_problem(e) for e in exc.errors()]) from None
    unstorable = text_problems(data)
    if unstorable:
        raise problems_error([Problem(loc, message) for loc, message in unstorable])
    return turn


def _refuse_own_generated_id(services: Services, tenant: Tenant, client_id: str | None) -> None:
    """A chosen id equal to one of the tenant's generated ids would hide that session."""
    if client_id is None or tenant.sees_all:
        return
    record = services.repo.find_session(client_id)
    if record is not None and record.tenant == tenant.name:
        raise SessionExists(f"session id {client_id} already exists; pick another id or omit it")


@router.post(
    "/sessions/{session_id}/retry",
    status_code=202,
    response_model=Accepted,
    responses=_errors(404, 409, 413, 422),
)
def retry_turn(
    request: Request,
    session_id: SessionId,
    tenant: Caller,
    body: Annotated[RetryTurn | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> Accepted:
    """Re-run a failed turn (optionally reworded); the turns after it follow."""
    services = services_of(request)
    stored, _ = owned(services, tenant, session_id)
    retry = body or RetryTurn()
    index = sessions.retry_turn(services, stored, retry.turn, retry.prompt)
    status_url = url(request, "get_session", session_id=session_id)
    return Accepted(session_id=session_id, index=index, state="queued", status_url=status_url)


@router.post(
    "/sessions/{session_id}/cancel",
    status_code=202,
    response_model=Accepted,
    responses=_errors(404, 409, 413, 422),
)
def cancel_session(
    request: Request, session_id: SessionId, tenant: Caller, idempotency_key: IdempotencyKey = None
) -> Accepted:
    """Stop the session before its next API call (a call in flight still commits)."""
    services = services_of(request)
    stored, _ = owned(services, tenant, session_id)
    sessions.cancel(services, stored)
    status_url = url(request, "get_session", session_id=session_id)
    return Accepted(session_id=session_id, state="cancelled", status_url=status_url)


@router.post(
    "/sessions/{session_id}/fork",
    status_code=201,
    response_model=Forked,
    responses=_errors(404, 409, 413, 422),
)
def fork_session(
    request: Request,
    response: Response,
    session_id: SessionId,
    body: ForkSession,
    tenant: Caller,
    idempotency_key: IdempotencyKey = None,
) -> Forked:
    """A new session holding turns 1..at of this one (same tenant and webhook)."""
    services = services_of(request)
    stored, _ = owned(services, tenant, session_id)
    _refuse_own_generated_id(services, tenant, body.session_id)
    owner = None if tenant.sees_all else tenant.name
    chosen = scoped_session_id(owner, body.session_id) if body.session_id else None
    new_sid = shown_id(
        tenant, sessions.fork(services, stored, body.at, chosen, body.history, body.budget_usd)
    )
    status_url = url(request, "get_session", session_id=new_sid)
    response.headers["location"] = status_url
    return Forked(session_id=new_sid, forked_from=session_id, at=body.at, status_url=status_url)


@router.get(
    "/sessions/{session_id}/turns/{index}/image",
    response_class=Response,
    responses={
        200: {"content": {f"image/{t}": {} for t in ("jpeg", "png", "webp", "gif")}},
        307: {"description": "Redirect to a presigned S3 URL that expires"},
        **_errors(404, 422),
    },
)
def turn_image(
    request: Request, session_id: SessionId, index: TurnIndex, tenant: Caller
) -> Response:
    """The turn's image: the exact bytes, or a redirect to a presigned URL that expires."""
    services = services_of(request)
    stored, _ = owned(services, tenant, session_id)
    return image_response(services, stored, index)
