"""Broker URLs that name Redis Sentinels (kombu's form) rather than one Redis; the client that
follows the master `EDITQUEUE_SENTINEL_MASTER` names is `shared.redis_state.redis_client`.

    sentinel://[:password@]host:port[/db];sentinel://host2:port2;...

The password and db of the first URL that gives them apply to the master (kombu reads them the
same way); the Sentinels themselves are asked without a password.
"""

from __future__ import annotations

from urllib.parse import urlparse

SENTINEL_SCHEME = "sentinel://"
DEFAULT_SENTINEL_PORT = 26379


def is_sentinel(url: str) -> bool:
    """True when the URL names Sentinels rather than one Redis."""
    return url.startswith(SENTINEL_SCHEME)


def sentinel_parts(url: str) -> tuple[list[tuple[str, int]], int, str | None]:
    """(Sentinel addresses, db, master password) of a `sentinel://` URL; ValueError if bad."""
    hosts: list[tuple[str, int]] = []
    db, password = 0, None
    for part in url.split(";"):
        parsed = urlparse(part.strip())
        if parsed.scheme != "sentinel" or not parsed.hostname:
            raise ValueError(f"{part!r} is not sentinel://host:port")
        hosts.append((parsed.hostname, parsed.port or DEFAULT_SENTINEL_PORT))
        if parsed.path.strip("/"):
            db = int(parsed.path.strip("/"))
        password = password or parsed.password
    return hosts, db, password
