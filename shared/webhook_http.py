"""The webhook POST over HTTP: the second module allowed to import requests (beside gemini.py).

Kept apart from the Gemini client on purpose: a different peer (the tenant's receiver), a short
fixed timeout, no redirects followed, and its own error.
"""

from __future__ import annotations

import requests

from shared.errors import TransientError
from shared.webhooks import DELIVERY_TIMEOUT_S

CONNECT_TIMEOUT_S = 5.0
MAX_ERROR_CHARS = 200


class WebhookUnreachable(TransientError):
    """The webhook receiver could not be reached or did not answer in time."""

    kind = "webhook_unreachable"


def post_webhook(
    url: str, body: bytes, headers: dict[str, str], timeout_s: float = DELIVERY_TIMEOUT_S
) -> int:
    """POST the body and return the HTTP status (3xx counts as a failure; not followed)."""
    try:
        response = requests.post(
            url,
            data=body,
            headers=headers,
            timeout=(min(CONNECT_TIMEOUT_S, timeout_s), timeout_s),
            allow_redirects=False,
            stream=True,  # the receiver's body is never read
        )
        response.close()
    except requests.RequestException as exc:
        reason = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        raise WebhookUnreachable(f"webhook POST failed ({reason})") from exc
    return int(response.status_code)
