"""`/ui/sessions/{id}`: the gallery page, the status JSON it polls, and its images.

A browser opens the signed link from `urls.gallery` (no header needed); a bearer token works too.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from producer import sessions
from producer.web.auth import Tenant, check_link, link_query
from producer.web.deps import SessionId, TurnIndex, now_s, owned, services_of, tokens_of
from producer.web.errors import ApiError
from producer.web.gallery_html import render_page
from producer.web.images import image_response
from producer.web.links import absolute_url, gallery_image_url, session_links
from producer.web.schemas import SessionView
from producer.web.views import session_view

router = APIRouter(prefix="/ui", include_in_schema=False)
LINK_KEYS = ("tenant", "expires", "sig")


def _viewer(request: Request, sid: str) -> tuple[Tenant, dict[str, str]]:
    """The tenant the link (or bearer header) speaks for, and the query to pass on."""
    tokens = tokens_of(request)
    query = dict(request.query_params)
    tenant = check_link(tokens, sid, query, now_s())
    if tenant is not None:
        return tenant, {k: query[k] for k in LINK_KEYS if k in query}
    tenant = tokens.tenant_for(request.headers.get("authorization"))
    if tenant is None:
        raise ApiError(
            403,
            "forbidden",
            "this gallery link is invalid or expired; GET /v1/sessions/{id} for a fresh one",
        )
    return tenant, link_query(tenant, sid, now_s())


def _view(request: Request, sid: str) -> tuple[SessionView, dict[str, str]]:
    tenant, query = _viewer(request, sid)
    services = services_of(request)
    stored, record = owned(services, tenant, sid)
    status = sessions.session_status(services, stored)
    links = session_links(request, tenant, sid, now_s())
    view = session_view(
        status, record, links, lambda n: gallery_image_url(request, sid, n, query), shown_id=sid
    )
    return view, query


@router.get("/sessions/{session_id}", response_class=HTMLResponse, name="gallery_page")
def gallery_page(request: Request, session_id: SessionId) -> HTMLResponse:
    """The session's evolution strip as a page."""
    view, query = _view(request, session_id)
    poll = str(
        absolute_url(request, "gallery_status", session_id=session_id).include_query_params(**query)
    )
    nonce = secrets.token_urlsafe(16)
    headers = {
        "content-security-policy": (
            f"default-src 'none'; img-src 'self' http: https: data:; connect-src 'self'; "
            f"style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'"
        ),
        "referrer-policy": "no-referrer",  # the link's signature stays out of Referer headers
        "cache-control": "no-store",
    }
    return HTMLResponse(render_page(view, poll, nonce), headers=headers)


@router.get("/sessions/{session_id}/status", response_model=SessionView, name="gallery_status")
def gallery_status(request: Request, session_id: SessionId) -> SessionView:
    """The status document the page polls (image URLs signed like the page)."""
    return _view(request, session_id)[0]


@router.get("/sessions/{session_id}/turns/{index}/image", name="gallery_image")
def gallery_image(request: Request, session_id: SessionId, index: TurnIndex) -> Response:
    """A turn's image for the page."""
    tenant, _ = _viewer(request, session_id)
    services = services_of(request)
    stored, _ = owned(services, tenant, session_id)
    return image_response(services, stored, index)
