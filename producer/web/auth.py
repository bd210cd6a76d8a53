"""Bearer tokens (`EDITQUEUE_API_TOKENS=token=tenant,...`), tenants, and signed gallery links.

With no tokens configured the API is open (one anonymous tenant that sees every session) and the
server binds to loopback only. A gallery link is signed with the token of the tenant that asked
for it (HMAC), so a browser can open it without a header, and revoking the token revokes it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

from shared.config import Settings
from shared.errors import InvalidSpec
from shared.ids import SESSION_ID_RE

MIN_TOKEN_CHARS = 16
LINK_TTL_S = 24 * 3600
BEARER = "bearer "


@dataclass(frozen=True)
class Tenant:
    """Who is asking: a tenant name, or None in the open (loopback, no tokens) mode.

    An operator (the tenant named by `EDITQUEUE_OPERATOR_TENANT`) sees every tenant's sessions,
    the CLI's included, by their stored ids (`tenant.id` for a tenant's chosen id).
    """

    name: str | None
    token: str = field(default="", repr=False)
    operator: bool = False

    @property
    def sees_all(self) -> bool:
        """True for the open mode and operators."""
        return self.name is None or self.operator


OPEN = Tenant(None)


def parse_tokens(text: str) -> dict[str, str]:
    """`tok1=acme,tok2=globex` as {token: tenant}; InvalidSpec never quotes a token."""
    table: dict[str, str] = {}
    for number, item in enumerate(filter(None, (p.strip() for p in text.split(","))), start=1):
        token, sep, tenant = item.partition("=")
        where = f"EDITQUEUE_API_TOKENS entry {number}"
        if not sep or not SESSION_ID_RE.fullmatch(tenant.strip()):
            raise InvalidSpec(f"{where}: write token=tenant (tenant: A-Z, a-z, 0-9, _ or -)")
        if len(token.strip()) < MIN_TOKEN_CHARS or not token.strip().isprintable():
            raise InvalidSpec(f"{where}: the token must be at least {MIN_TOKEN_CHARS} characters")
        table[token.strip()] = tenant.strip()
    return table


class TokenTable:
    """The configured tokens; lookups compare every token in constant time."""

    def __init__(self, tokens: dict[str, str], operator: str | None = None) -> None:
        self._tokens = dict(tokens)
        self._operator = operator

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenTable:
        """The tokens of `EDITQUEUE_API_TOKENS` (none when unset or empty)."""
        secret = settings.http_tokens
        tokens = parse_tokens(secret.get_secret_value()) if secret else {}
        return cls(tokens, settings.operator_tenant)

    @property
    def enabled(self) -> bool:
        """True when requests must carry a token."""
        return bool(self._tokens)

    def tenant_for(self, authorization: str | None) -> Tenant | None:
        """The tenant of an `Authorization: Bearer` header (OPEN without tokens), or None."""
        if not self.enabled:
            return OPEN
        if not authorization or authorization[: len(BEARER)].lower() != BEARER:
            return None
        offered = authorization[len(BEARER) :].strip().encode()
        found = None
        for token, tenant in self._tokens.items():  # no early exit: constant time
            if hmac.compare_digest(token.encode(), offered):
                found = Tenant(tenant, token, operator=tenant == self._operator)
        return found

    def tokens_of(self, tenant: str) -> list[str]:
        """Every token of one tenant (any of them may have signed a link)."""
        return [token for token, name in self._tokens.items() if name == tenant]


def link_signature(token: str, sid: str, expires: int) -> str:
    """The `sig` of a gallery link for session `sid` valid until `expires` (unix seconds)."""
    digest = hmac.new(token.encode(), f"gallery.{sid}.{expires}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def link_query(tenant: Tenant, sid: str, now: int) -> dict[str, str]:
    """The query that lets a browser open the gallery of `sid` (empty in the open mode)."""
    if tenant.name is None:
        return {}
    expires = now + LINK_TTL_S
    sig = link_signature(tenant.token, sid, expires)
    return {"tenant": tenant.name, "expires": str(expires), "sig": sig}


def check_link(table: TokenTable, sid: str, query: dict[str, str], now: int) -> Tenant | None:
    """The tenant a gallery link was signed for, if the link is genuine and not expired."""
    if not table.enabled:
        return OPEN
    name, sig = query.get("tenant", ""), query.get("sig", "")
    try:
        expires = int(query.get("expires", ""))
    except ValueError:
        return None
    if expires < now or not name:
        return None
    found = None
    for token in table.tokens_of(name):
        if hmac.compare_digest(link_signature(token, sid, expires), sig):
            found = table.tenant_for(f"Bearer {token}")
    return found
