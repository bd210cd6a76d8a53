"""Absolute URLs the answers carry: a session's endpoints, its images and its gallery.

Every URL starts with the configured public base (`EDITQUEUE_API_PUBLIC_URL`, set by `editqueue
api` to its own address when unset), never with the request's `Host` header: a client could put
anything there, and the links are handed to browsers and stored by receivers.
"""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import URL

from producer.web.auth import Tenant, link_query
from producer.web.schemas import SessionLinks


def absolute_url(request: Request, name: str, **params: str | int) -> URL:
    """The public URL of a named route."""
    base: str = request.app.state.public_url
    path = request.app.url_path_for(name, **{k: str(v) for k, v in params.items()})
    return URL(base.rstrip("/") + str(path))


def url(request: Request, name: str, **params: str | int) -> str:
    """The absolute URL of a named route, as text."""
    return str(absolute_url(request, name, **params))


def gallery_url(request: Request, tenant: Tenant, sid: str, now: int) -> str:
    """The gallery page, signed for `tenant` so a browser can open it without a header."""
    page = absolute_url(request, "gallery_page", session_id=sid)
    return str(page.include_query_params(**link_query(tenant, sid, now)))


def session_links(request: Request, tenant: Tenant, sid: str, now: int) -> SessionLinks:
    """Every endpoint of one session (`sid` as the caller knows it)."""
    return SessionLinks(
        status=url(request, "get_session", session_id=sid),
        turns=url(request, "append_turn", session_id=sid),
        cancel=url(request, "cancel_session", session_id=sid),
        retry=url(request, "retry_turn", session_id=sid),
        fork=url(request, "fork_session", session_id=sid),
        gallery=gallery_url(request, tenant, sid, now),
    )


def api_image_url(request: Request, sid: str, index: int) -> str:
    """A turn's image through the API (bearer token needed; redirects to S3 when it can)."""
    return url(request, "turn_image", session_id=sid, index=index)


def gallery_image_url(request: Request, sid: str, index: int, query: dict[str, str]) -> str:
    """A turn's image through the gallery's signed link."""
    image = absolute_url(request, "gallery_image", session_id=sid, index=str(index))
    return str(image.include_query_params(**query))
