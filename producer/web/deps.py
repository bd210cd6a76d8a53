"""What routes share: the services, the caller's tenant, and sessions only their owner sees."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from producer.web.auth import Tenant, TokenTable
from producer.web.errors import ApiError
from producer.web.schemas import STORED_ID_PATTERN
from shared.errors import UnknownSession
from shared.ids import public_session_id, scoped_session_id
from shared.services import Services
from shared.session_records import SessionRecord

bearer = HTTPBearer(auto_error=False, description="A token of EDITQUEUE_API_TOKENS")

SessionId = Annotated[
    str, Path(pattern=STORED_ID_PATTERN, max_length=129, description="The session's id")
]
TurnIndex = Annotated[int, Path(ge=1, le=100_000, description="The turn's index (1-based)")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retry-safe POST: the same key and body return the first answer (24 h).",
    ),
]


def services_of(request: Request) -> Services:
    """The process's services (set by `create_app`)."""
    services: Services = request.app.state.services
    return services


def tokens_of(request: Request) -> TokenTable:
    """The configured bearer tokens."""
    tokens: TokenTable = request.app.state.tokens
    return tokens


def now_s() -> int:
    """Unix seconds (link expiry)."""
    return int(time.time())


def require_tenant(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Tenant:
    """The caller's tenant; 401 without a valid bearer token (when tokens are configured)."""
    header = f"Bearer {credentials.credentials}" if credentials else None
    tenant = tokens_of(request).tenant_for(header)
    if tenant is None:
        raise ApiError(
            401,
            "unauthorized",
            "send Authorization: Bearer <token> with a token of EDITQUEUE_API_TOKENS",
            headers={"www-authenticate": "Bearer"},
        )
    return tenant


Caller = Annotated[Tenant, Depends(require_tenant)]


def owned(services: Services, tenant: Tenant, sid: str) -> tuple[str, SessionRecord]:
    """The stored id and record of the caller's session `sid`; another tenant's is unknown.

    A tenant's chosen ids are stored as `tenant.id`, generated ones as they are: the first is
    looked up first. Operators (and the open mode) name sessions by their stored ids.
    """
    if tenant.sees_all:
        return sid, services.repo.session(sid)
    for stored in (scoped_session_id(tenant.name, sid), sid):
        record = services.repo.find_session(stored)
        if record is not None and record.tenant == tenant.name:
            return stored, record
    raise UnknownSession(f"session {sid} does not exist")


def shown_id(tenant: Tenant, stored: str) -> str:
    """The id the caller knows a stored session by."""
    return stored if tenant.sees_all else public_session_id(stored)
