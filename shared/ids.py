"""Session ids: the shape a client may choose, and how a tenant's id is stored."""

from __future__ import annotations

import re

SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# How a session id is stored: a tenant's client-chosen id is kept as `tenant.id` (client ids and
# tenant names never hold a dot), so the same id chosen in two tenants names two sessions.
STORED_ID_RE = re.compile(r"(?:[A-Za-z0-9_-]{1,64}\.)?[A-Za-z0-9_-]{1,64}")


def validate_session_id(value: str) -> str:
    """Refuse client session ids that could be paths or keys of another shape."""
    if not SESSION_ID_RE.fullmatch(value):
        raise ValueError(
            f"session id {value!r} must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'"
        )
    return value


def validate_stored_id(value: str) -> str:
    """Refuse stored session ids (`id` or `tenant.id`) of any other shape."""
    if not STORED_ID_RE.fullmatch(value):
        raise ValueError(
            f"session id {value!r} must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-' "
            "(an operator may prefix a tenant's session with 'tenant.')"
        )
    return value


def scoped_session_id(tenant: str | None, client_id: str) -> str:
    """Where a tenant's client-chosen session id is stored (`tenant.id`; as is without a tenant)."""
    return f"{tenant}.{client_id}" if tenant else client_id


def public_session_id(stored: str) -> str:
    """The id a tenant knows a stored session by (the part after `tenant.`)."""
    return stored.rpartition(".")[2]
