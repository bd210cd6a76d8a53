"""The Files and Batch APIs over HTTP: upload a JSONL, create, follow, cancel a job, download.

Wire protocol as the google-genai SDK speaks it (Gemini Developer API): a resumable upload to
`/upload/v1beta/files` (`X-Goog-Upload-Protocol: resumable`, a `start` command answered with an
`x-goog-upload-url`, then the bytes with `upload, finalize`), `models/{m}:batchGenerateContent`,
`batches/{id}` (get), `batches/{id}:cancel`, `batches` (list), `files/{id}:download?alt=media`.
The key travels in the `x-goog-api-key` header only; errors are editqueue's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from pydantic import SecretStr

from shared.api_errors import classify_http_error
from shared.errors import MalformedResponse
from shared.gemini import http_exchange, pooled_session

DEFAULT_BATCH_HTTP_TIMEOUT_S = 300.0
LIST_PAGE_SIZE = 100


class BatchApi(Protocol):
    """What the batcher needs of the Batch API."""

    def upload_jsonl(self, path: Path, display_name: str) -> str:
        """Upload a JSONL file; its `files/{id}` name."""
        ...

    def create(self, model: str, body: bytes) -> dict[str, Any]:
        """Create a job from a `{"batch": {...}}` body; the Operation."""
        ...

    def get(self, name: str) -> dict[str, Any]:
        """The Operation of `batches/{id}` (metadata holds the batch)."""
        ...

    def find(self, display_name: str) -> dict[str, Any] | None:
        """The Operation of the newest job with this display name, or None."""
        ...

    def cancel(self, name: str) -> None:
        """Ask the service to cancel a job."""
        ...

    def download(self, file_name: str, dest: Path) -> None:
        """Stream a file's bytes (a job's output) into `dest`."""
        ...


class HttpBatchApi:
    """BatchApi over requests (through shared.gemini's exchange)."""

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr | None,
        timeout_s: float = DEFAULT_BATCH_HTTP_TIMEOUT_S,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._key = api_key.get_secret_value() if api_key is not None else None
        self._timeout_s = timeout_s
        self._session = pooled_session()

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **(extra or {})}
        if self._key is not None:
            headers["x-goog-api-key"] = self._key
        return headers

    def _call(
        self, method: str, url: str, data: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[dict[str, str], bytes]:
        status, found, body = http_exchange(
            self._session,
            method,
            url,
            headers=headers or self._headers(),
            data=data,
            timeout_s=self._timeout_s,
            secret=self._key,
        )
        if not 200 <= status < 300:
            raise classify_http_error(status, body, secret=self._key)
        return found, body

    def _json(self, method: str, path: str, data: Any = None) -> dict[str, Any]:
        _, body = self._call(method, f"{self._base}/v1beta/{path}", data)
        try:
            doc = json.loads(body or b"{}")
        except ValueError as exc:
            raise MalformedResponse(f"{path}: the answer is not JSON") from exc
        if not isinstance(doc, dict):
            raise MalformedResponse(f"{path}: the answer is not a JSON object")
        return doc

    def upload_jsonl(self, path: Path, display_name: str) -> str:
        size = path.stat().st_size
        start = self._headers(
            {
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": str(size),
                "X-Goog-Upload-Header-Content-Type": "application/jsonl",
            }
        )
        meta = json.dumps({"file": {"displayName": display_name}})
        found, _ = self._call("POST", f"{self._base}/upload/v1beta/files", meta, start)
        url = found.get("x-goog-upload-url")
        if not url:
            raise MalformedResponse("the upload start answered without an x-goog-upload-url")
        chunk = self._headers(
            {
                "X-Goog-Upload-Command": "upload, finalize",
                "X-Goog-Upload-Offset": "0",
                "Content-Length": str(size),
            }
        )
        with path.open("rb") as handle:
            _, body = self._call("POST", url, handle, chunk)
        name = json.loads(body).get("file", {}).get("name")
        if not isinstance(name, str):
            raise MalformedResponse("the upload finished without a file name")
        return name

    def create(self, model: str, body: bytes) -> dict[str, Any]:
        model_id = quote(model.removeprefix("models/"), safe="")
        return self._json("POST", f"models/{model_id}:batchGenerateContent", body)

    def get(self, name: str) -> dict[str, Any]:
        return self._json("GET", name)

    def find(self, display_name: str) -> dict[str, Any] | None:
        token = ""
        while True:
            page = self._json("GET", f"batches?pageSize={LIST_PAGE_SIZE}&pageToken={token}")
            for op in page.get("operations", []):
                if op.get("metadata", {}).get("displayName") == display_name:
                    return self.get(str(op.get("name")))
            token = str(page.get("nextPageToken") or "")
            if not token:
                return None

    def cancel(self, name: str) -> None:
        self._json("POST", f"{name}:cancel")

    def download(self, file_name: str, dest: Path) -> None:
        url = f"{self._base}/v1beta/{file_name}:download?alt=media"
        status, _, body = http_exchange(
            self._session,
            "GET",
            url,
            headers=self._headers(),
            timeout_s=self._timeout_s,
            secret=self._key,
            save_to=dest,
        )
        if status != 200:
            raise classify_http_error(status, body, secret=self._key)
