"""The commands a refusal recommends, said as this API's requests to an HTTP caller.

The producer words its advice as CLI commands in backticks (shared/errors.py); over HTTP the same
step is a request, and the session is named by the id the caller used in the path (a tenant's
own session id is stored as `tenant.id`). Commands without an HTTP route (`budget`, `reconcile`,
`init`) stay as they are: they are the operator's.
"""

from __future__ import annotations

import json
import re
import shlex

COMMAND_RE = re.compile(r"`editqueue ([^`]+)`")
PROMPT_BODY = '{"prompt": "PROMPT"}'


def for_http(message: str, path_id: str | None) -> str:
    """`message` with each recommended command as a request, and the caller's session id."""
    if path_id:
        message = re.sub(rf"\b[A-Za-z0-9_-]+\.{re.escape(path_id)}\b", path_id, message)
    return COMMAND_RE.sub(lambda found: _request(found.group(0), found.group(1)), message)


def _request(quoted: str, command: str) -> str:
    name, *args = shlex.split(command)
    if name == "status":
        return f"`GET /v1/sessions/{args[0]}`" if args else "`GET /v1/sessions`"
    if name in ("cancel", "retry"):
        return f"`POST /v1/sessions/{args[0]}/{name}`"
    if name == "append":
        return f"`POST /v1/sessions/{args[0]}/turns {PROMPT_BODY}`"
    if name == "fork":
        return f"`POST /v1/sessions/{args[0]}/fork {json.dumps(_fork_body(args[1:]))}`"
    return quoted


def _fork_body(options: list[str]) -> dict[str, object]:
    values = dict(zip(options[::2], options[1::2], strict=True))
    body: dict[str, object] = {"at": int(values["--at"])}
    if "--history" in values:
        body["history"] = values["--history"]
    if "--budget-usd" in values:
        body["budget_usd"] = float(values["--budget-usd"])
    return body
