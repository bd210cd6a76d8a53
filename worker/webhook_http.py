"""The webhook POST over HTTP, to the address that was checked (`shared/webhooks.py`).

Kept apart from the Gemini client on purpose: a different peer (the tenant's receiver), a short
fixed timeout, no redirects followed, no proxy environment (urllib3 reads none; requests would
honour HTTP(S)_PROXY), and its own error. The host is resolved and checked here, then the
connection goes to that address while the Host header and TLS name stay the URL's host, so DNS
cannot answer differently between the check and the connect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import urllib3

from shared.errors import WebhookUnreachable
from shared.webhooks import DELIVERY_TIMEOUT_S, Destination, Network, Resolver, check_destination

CONNECT_TIMEOUT_S = 5.0
MAX_ERROR_CHARS = 200


def _pool(dest: Destination, timeout_s: float) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(connect=min(CONNECT_TIMEOUT_S, timeout_s), read=timeout_s)
    if dest.scheme == "http":
        return urllib3.HTTPConnectionPool(dest.address, dest.port, timeout=timeout, maxsize=1)
    tls: dict[str, Any] = {}
    if not dest.host_is_address:  # name the host for SNI and check the certificate against it
        tls = {"server_hostname": dest.host, "assert_hostname": dest.host}
    return urllib3.HTTPSConnectionPool(
        dest.address, dest.port, timeout=timeout, maxsize=1, cert_reqs="CERT_REQUIRED", **tls
    )


def post_webhook(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow: Sequence[Network],
    resolver: Resolver,
    timeout_s: float = DELIVERY_TIMEOUT_S,
) -> int:
    """POST the body and return the HTTP status (3xx counts as a failure; not followed).

    WebhookRefused when the destination breaks a rule; WebhookUnreachable on network errors.
    """
    dest = check_destination(url, allow, resolver)
    pool = _pool(dest, timeout_s)
    try:
        response = pool.urlopen(
            "POST",
            dest.target,
            body=body,
            headers={**headers, "host": dest.host_header},
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,  # the receiver's body is never read
        )
        status = int(response.status)
        response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        reason = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        raise WebhookUnreachable(f"webhook POST failed ({reason})") from exc
    finally:
        pool.close()
    return status
