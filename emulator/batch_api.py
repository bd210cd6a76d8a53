"""HTTP routes of the Files and Batch APIs, free of the socket layer: a request in, an Answer out.

Paths (google-genai SDK, Gemini Developer API mode):
  POST   /upload/v1beta/files                      resumable upload: start, then chunks
  GET    /v1beta/files/{id}                        file metadata
  GET    /v1beta/files/{id}:download?alt=media     a generated file's bytes
  DELETE /v1beta/files/{id}
  POST   /v1beta/models/{model}:batchGenerateContent
  GET    /v1beta/batches  ·  GET|DELETE /v1beta/batches/{id}  ·  POST /v1beta/batches/{id}:cancel
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from emulator.batches import BatchService, operation
from emulator.errors import ApiError, JsonDict, invalid_argument
from emulator.files import FileStore

JSON_TYPE = "application/json; charset=UTF-8"
_UPLOAD_RE = re.compile(r"^/upload/(v1|v1beta)/files$")
_FILE_RE = re.compile(r"^/(v1|v1beta)/(files/[^/:]+)(:download)?$")
_BATCH_CREATE_RE = re.compile(r"^/(v1|v1beta)/models/([^/:]+):batchGenerateContent$")
_BATCH_RE = re.compile(r"^/(v1|v1beta)/batches(?:/([^/:]+))?(:cancel)?$")


@dataclass(frozen=True)
class Answer:
    """What to send: status, body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)


def json_answer(body: JsonDict, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    """A JSON answer."""
    return Answer(status, json.dumps(body).encode(), JSON_TYPE, headers or {})


def error_answer(error: ApiError) -> Answer:
    """A Google-shaped error answer."""
    return json_answer(error.body(), error.code)


def handles(path: str) -> bool:
    """True when `path` belongs to the Files or Batch API."""
    return any(r.match(path) for r in (_UPLOAD_RE, _FILE_RE, _BATCH_CREATE_RE, _BATCH_RE))


@dataclass(frozen=True)
class Call:
    """One HTTP request to the Files or Batch API (header names lower-case)."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    base_url: str  # http://host:port the client used, for upload and file URLs


@dataclass
class BatchApi:
    """Routes one request of the Files or Batch API to the stores."""

    files: FileStore
    batches: BatchService
    requests: Counter[str] = field(default_factory=Counter)  # by route, for /emulator/stats
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, call: Call) -> Answer:
        """The answer to one request (errors come back Google-shaped)."""
        with self._lock:
            self.requests[_route_name(call.method, call.path)] += 1
        try:
            return self._route(call)
        except ApiError as error:
            return error_answer(error)

    def _route(self, call: Call) -> Answer:
        method, path = call.method, call.path
        if _UPLOAD_RE.match(path) and method == "POST":
            return self._upload(call)
        if (match := _FILE_RE.match(path)) is not None:
            return self._file(method, match.group(2), bool(match.group(3)), call.base_url)
        if (match := _BATCH_CREATE_RE.match(path)) is not None and method == "POST":
            job = self.batches.create(match.group(2), _json(call.body), len(call.body))
            return json_answer(operation(job))
        if (match := _BATCH_RE.match(path)) is not None:
            return self._batch(method, match.group(2), bool(match.group(3)), call.query)
        raise ApiError(404, "NOT_FOUND", f"The requested URL {path} was not found on this server.")

    def _upload(self, call: Call) -> Answer:
        headers, body, base_url = call.headers, call.body, call.base_url
        command = headers.get("x-goog-upload-command", "").lower()
        if "start" in command:
            meta = _json(body).get("file") or {}
            upload_id = self.files.start_upload(
                meta,
                headers.get("x-goog-upload-header-content-length"),
                headers.get("x-goog-upload-header-content-type"),
            )
            url = f"{base_url}/upload/v1beta/files?upload_id={upload_id}"
            return json_answer(
                {}, headers={"x-goog-upload-url": url, "x-goog-upload-status": "active"}
            )
        upload_id = (call.query.get("upload_id") or [""])[0]
        offset = int(headers.get("x-goog-upload-offset", "0") or 0)
        stored = self.files.append(upload_id, offset, body, "finalize" in command)
        if not stored.complete:
            return json_answer({}, headers={"x-goog-upload-status": "active"})
        return json_answer(
            {"file": stored.resource(base_url)}, headers={"x-goog-upload-status": "final"}
        )

    def _file(self, method: str, name: str, download: bool, base_url: str) -> Answer:
        if method == "DELETE" and not download:
            self.files.delete(name)
            return json_answer({})
        stored = self.files.get(name)
        if download:
            return Answer(200, bytes(stored.data), stored.mime_type)
        return json_answer(stored.resource(base_url))

    def _batch(
        self, method: str, job_id: str | None, cancel: bool, query: Mapping[str, list[str]]
    ) -> Answer:
        if job_id is None:
            return self._list(query)
        if cancel and method == "POST":
            self.batches.cancel(job_id)
            return json_answer({})
        if method == "DELETE":
            self.batches.delete(job_id)
            return json_answer({})
        return json_answer(operation(self.batches.get(job_id)))

    def _list(self, query: Mapping[str, list[str]]) -> Answer:
        size = int((query.get("pageSize") or ["50"])[0])
        start = int((query.get("pageToken") or ["0"])[0] or 0)
        jobs = self.batches.jobs()
        page = jobs[start : start + size]
        body: JsonDict = {"operations": [operation(j, with_inline=False) for j in page]}
        if start + size < len(jobs):
            body["nextPageToken"] = str(start + size)
        return json_answer(body)


def _route_name(method: str, path: str) -> str:
    """`POST upload`, `GET batch`, `GET download`... for counting requests."""
    if _UPLOAD_RE.match(path):
        return f"{method} upload"
    if (match := _FILE_RE.match(path)) is not None:
        return f"{method} {'download' if match.group(3) else 'file'}"
    if _BATCH_CREATE_RE.match(path):
        return f"{method} batchGenerateContent"
    return f"{method} batch{'es' if path.rstrip('/').endswith('batches') else ''}"


def _json(body: bytes) -> JsonDict:
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise invalid_argument("Invalid JSON payload received.") from exc
    if not isinstance(data, dict):
        raise invalid_argument("Invalid JSON payload received. Expected an object.")
    return data
