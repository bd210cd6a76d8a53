"""Session ids on the producer side: generated (ULIDs), checked, and still free in the store."""

from __future__ import annotations

from ulid import ULID

from shared.errors import InvalidSpec, SessionExists
from shared.ids import public_session_id, validate_stored_id
from shared.keys import session_key
from shared.sessions import SessionRepository


def generate_session_id() -> str:
    """A fresh, sortable session id (a ULID)."""
    return str(ULID())


def checked_id(sid: str) -> str:
    """A client-given stored id, checked (InvalidSpec when of the wrong shape)."""
    try:
        return validate_stored_id(sid)
    except ValueError as exc:
        raise InvalidSpec(str(exc)) from None


def taken(sid: str) -> SessionExists:
    """The error for an id that is already a session (named as its tenant knows it)."""
    shown = public_session_id(sid)
    return SessionExists(f"session id {shown} already exists; pick another id or omit it")


def require_free(repo: SessionRepository, sid: str) -> None:
    """SessionExists when `sid` is already stored."""
    if repo.store.exists(session_key(sid)):
        raise taken(sid)
