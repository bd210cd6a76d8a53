"""The Gemini generateContent call over HTTP; the only module in editqueue that imports requests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import requests
import urllib3.exceptions
from pydantic import SecretStr

from shared.api_errors import classify_http_error
from shared.config import DEFAULT_API_TIMEOUT_S
from shared.deadline import Deadline
from shared.errors import (
    ConnectionFailed,
    EditQueueError,
    MalformedResponse,
    PermanentError,
    Timeout,
)
from shared.redaction import redact
from shared.request_body import RequestBody
from shared.responses import MESSAGE_MAX_CHARS, ApiResponse, parse_success

DEFAULT_CONNECT_TIMEOUT_S = 5.0
# Kept connections per host: at least a worker's threads, or surplus ones are closed and reopened
# on every call (requests keeps 10).
POOL_CONNECTIONS = 64
READ_CHUNK_BYTES = 256 * 1024
# Far above any real answer (a 4K PNG is tens of MB in base64); refuses a runaway or lying server.
MAX_RESPONSE_BYTES = 512 * 1024 * 1024
# The bundled emulator names itself here (see emulator/app.py); Google has no such path.
EMULATOR_INFO_PATH = "/emulator/info"
EMULATOR_SERVICE = "editqueue-emulator"
PROBE_TIMEOUT_S = 3.0

# What a failed exchange can raise from requests and urllib3 (this module owns both).
TRANSPORT_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


def emulator_identity(base_url: str, timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Any] | None:
    """What the bundled emulator at `base_url` says about itself; None when it is not one."""
    try:
        answer = requests.get(
            base_url.rstrip("/") + EMULATOR_INFO_PATH, timeout=timeout_s, allow_redirects=False
        )
        doc = answer.json() if answer.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None
    if isinstance(doc, dict) and doc.get("service") == EMULATOR_SERVICE:
        return doc
    return None


class GeminiClient(Protocol):
    """One generateContent call; raises editqueue errors only."""

    def generate(self, model: str, body: RequestBody) -> ApiResponse:
        """The parsed 200 answer (with `latency_s`), or an EditQueueError."""
        ...


class _StreamedBody:
    """Adapts a RequestBody for requests: `__len__` makes it send Content-Length, not chunked."""

    def __init__(self, body: RequestBody, deadline: Deadline) -> None:
        self._body = body
        self._deadline = deadline

    def __len__(self) -> int:
        return self._body.content_length

    def __iter__(self) -> Iterator[bytes]:
        # Socket timeouts bound each send; checking between chunks bounds the whole upload.
        sent = 0
        for chunk in self._body.chunks():
            self._deadline.check("sending the request")
            sent += len(chunk)
            if sent > self._body.content_length:
                break
            yield chunk
        if sent != self._body.content_length:
            raise PermanentError(
                f"the request body yielded {sent}+ bytes but declared "
                f"{self._body.content_length}; this is a bug in the request builder"
            )


def _declared_length(response: requests.Response) -> int | None:
    # With gzip the header counts compressed bytes, so only an identity body can be pre-sized.
    if response.headers.get("Content-Encoding", "identity").lower() != "identity":
        return None
    try:
        length = int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None
    if length > MAX_RESPONSE_BYTES:
        raise MalformedResponse(
            f"the API declared a {length}-byte body", status=response.status_code
        )
    return length


def _read_chunks(response: requests.Response, deadline: Deadline) -> Iterator[bytes]:
    # read1 returns what has arrived; iter_content would block until a full chunk is in, so a
    # server dripping one byte at a time could hold us far past the deadline.
    raw = response.raw
    while True:
        remaining = deadline.check("reading the response body")
        # Looked up before every read: the read that completes the body hands the connection
        # back to the pool, where another thread may take it (or it is closed as surplus), so
        # its socket is no longer ours to touch (a closed one raised EBADF after a paid call).
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is not None:  # each read may wait only what is left of the total budget
            sock.settimeout(remaining)
        chunk = raw.read1(READ_CHUNK_BYTES, decode_content=True)
        if not chunk:
            return
        yield chunk


def _read_body(response: requests.Response, deadline: Deadline) -> bytearray:
    declared = _declared_length(response)
    body = bytearray(declared or 0)  # one buffer of the exact size, filled in place
    size = 0
    for chunk in _read_chunks(response, deadline):
        end = size + len(chunk)
        if end > (MAX_RESPONSE_BYTES if declared is None else declared):
            raise MalformedResponse(
                f"the API sent more than {declared or MAX_RESPONSE_BYTES} body bytes",
                status=response.status_code,
            )
        if declared is None:
            body += chunk
        else:
            body[size:end] = chunk
        size = end
        deadline.check("reading the response body")
    if declared is not None and size != declared:
        raise ConnectionFailed(f"the API closed the connection after {size} of {declared} bytes")
    return body


def _pooled_session() -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=POOL_CONNECTIONS)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class HttpGeminiClient:
    """GeminiClient over requests: key in a header, one total deadline, only our errors escape.

    `generate` returns the parsed ApiResponse with `latency_s` set to the wall time of the call.
    """

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr | None,
        timeout_s: float = DEFAULT_API_TIMEOUT_S,
        session: requests.Session | None = None,
        *,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._key = api_key.get_secret_value() if api_key is not None else None
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._session = session or _pooled_session()

    def close(self) -> None:
        """Release pooled connections."""
        self._session.close()

    def url_for(self, model: str) -> str:
        """The generateContent URL for `model` (never carries the key)."""
        model_id = quote(model.removeprefix("models/"), safe="")
        return f"{self._base_url}/v1beta/models/{model_id}:generateContent"

    def generate(self, model: str, body: RequestBody) -> ApiResponse:
        """POST one generateContent call under the total deadline; raises our errors only."""
        deadline = Deadline(self._timeout_s)
        try:
            status, payload = self._exchange(model, body, deadline)
        except EditQueueError:
            raise
        except TRANSPORT_ERRORS as exc:
            raise self._translate(exc, deadline) from exc
        if status != 200:
            raise classify_http_error(status, payload, secret=self._key)
        return dataclasses.replace(parse_success(payload), latency_s=deadline.elapsed())

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key is not None:
            headers["x-goog-api-key"] = self._key  # a header, so no URL (or its logs) holds it
        return headers

    def _exchange(self, model: str, body: RequestBody, deadline: Deadline) -> tuple[int, bytearray]:
        remaining = deadline.check("connecting")
        response = self._session.post(
            self.url_for(model),
            data=_StreamedBody(body, deadline),
            headers=self._headers(),
            timeout=(min(self._connect_timeout_s, remaining), remaining),
            stream=True,
            allow_redirects=False,  # a redirect would need the streamed body a second time
        )
        try:
            deadline.check("waiting for the response")
            return response.status_code, _read_body(response, deadline)
        finally:
            response.close()

    def _translate(self, exc: Exception, deadline: Deadline) -> EditQueueError:
        detail = redact(f"{type(exc).__name__}: {exc}", self._key)[:MESSAGE_MAX_CHARS]
        if isinstance(exc, requests.ConnectTimeout):
            return ConnectionFailed(f"could not connect to the API in time: {detail}")
        if isinstance(
            exc, requests.ReadTimeout | urllib3.exceptions.ReadTimeoutError | TimeoutError
        ):
            return Timeout(
                f"the API did not answer within the {deadline.total_s:g}s deadline; it is "
                f"retried, raise EDITQUEUE_API_TIMEOUT_S if calls are legitimately slower: {detail}"
            )
        if isinstance(
            exc,
            requests.exceptions.ContentDecodingError
            | requests.exceptions.ChunkedEncodingError
            | urllib3.exceptions.DecodeError,
        ):
            return MalformedResponse(f"the API's response body could not be decoded: {detail}")
        if isinstance(
            exc,
            requests.exceptions.InvalidURL
            | requests.exceptions.InvalidSchema
            | requests.exceptions.MissingSchema,
        ):
            return PermanentError(f"bad API URL, check EDITQUEUE_API_BASE_URL: {detail}")
        return ConnectionFailed(f"the connection to the API failed: {detail}")


def pooled_session() -> requests.Session:
    """A requests session that keeps POOL_CONNECTIONS connections per host."""
    return _pooled_session()


def http_exchange(
    session: requests.Session,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    data: Any = None,
    timeout_s: float,
    secret: str | None = None,
    save_to: Path | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP exchange (the Files and Batch APIs): status, lower-case headers, body.

    With `save_to`, a 200 body is streamed into that file instead of returned. Raises our
    ConnectionFailed (the secret scrubbed) for any transport failure.
    """
    try:
        response = session.request(
            method,
            url,
            headers=headers,
            data=data,
            timeout=timeout_s,
            stream=save_to is not None,
            allow_redirects=False,
        )
        try:
            found = {k.lower(): v for k, v in response.headers.items()}
            if save_to is not None and response.status_code == 200:
                with save_to.open("wb") as handle:
                    for chunk in response.iter_content(READ_CHUNK_BYTES):
                        handle.write(chunk)
                return response.status_code, found, b""
            return response.status_code, found, response.content
        finally:
            response.close()
    except TRANSPORT_ERRORS as exc:
        detail = redact(f"{type(exc).__name__}: {exc}", secret)[:MESSAGE_MAX_CHARS]
        raise ConnectionFailed(f"{method} {url.split('?')[0]} failed: {detail}") from exc
