"""The Files API: resumable uploads, file metadata, downloads of generated files.

Shapes follow the google-genai SDK's wire protocol (`files.upload` / `files.download`): a start
request to `/upload/v1beta/files` with `X-Goog-Upload-Protocol: resumable` answers with an
`x-goog-upload-url`; chunks go there with `X-Goog-Upload-Command: upload[, finalize]` and
`X-Goog-Upload-Offset`; the finalizing chunk answers `x-goog-upload-status: final` and
`{"file": {...}}`. Generated files (batch output) download from `files/{id}:download?alt=media`.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field

from emulator.errors import ApiError, JsonDict, invalid_argument

# Files live 48 h (Gemini Files API docs); the emulator only reports the expiry time.
FILE_LIFETIME_S = 48 * 3600
MAX_FILE_BYTES = 2 * 1024**3


def rfc3339(seconds: float) -> str:
    """A protobuf Timestamp string (UTC, millisecond precision)."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{whole}.{int(seconds % 1 * 1000):03d}Z"


def not_found(what: str) -> ApiError:
    """The 404 for a file or batch that does not exist."""
    return ApiError(404, "NOT_FOUND", f"Requested entity was not found: {what}.")


@dataclass
class StoredFile:
    """One file: its bytes (complete once finalized) and metadata."""

    name: str  # files/{id}
    mime_type: str
    display_name: str
    expected_bytes: int
    source: str = "UPLOADED"  # or GENERATED (batch output)
    data: bytearray = field(default_factory=bytearray)
    complete: bool = False
    created: float = field(default_factory=time.time)

    def resource(self, base_url: str) -> JsonDict:
        """The File resource as the API returns it."""
        body: JsonDict = {
            "name": self.name,
            "displayName": self.display_name,
            "mimeType": self.mime_type,
            "sizeBytes": str(len(self.data)),
            "createTime": rfc3339(self.created),
            "updateTime": rfc3339(self.created),
            "expirationTime": rfc3339(self.created + FILE_LIFETIME_S),
            "sha256Hash": hashlib.sha256(self.data).hexdigest(),
            "uri": f"{base_url}/v1beta/{self.name}",
            "state": "ACTIVE" if self.complete else "PROCESSING",
            "source": self.source,
        }
        if self.source == "GENERATED":
            body["downloadUri"] = f"{base_url}/v1beta/{self.name}:download?alt=media"
        return body


class FileStore:
    """Thread-safe files and upload sessions, in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}
        self._uploads: dict[str, str] = {}  # upload id -> file name

    def start_upload(self, meta: JsonDict, size_header: str | None, mime_header: str | None) -> str:
        """Open a resumable upload; returns its upload id."""
        try:
            expected = int(size_header or meta.get("sizeBytes") or 0)
        except ValueError as exc:
            raise invalid_argument("X-Goog-Upload-Header-Content-Length is not a number") from exc
        if not 0 <= expected <= MAX_FILE_BYTES:
            raise invalid_argument(f"File size {expected} is over the {MAX_FILE_BYTES} limit.")
        name = str(meta.get("name") or f"files/{secrets.token_hex(6)}")
        if not name.startswith("files/"):
            name = f"files/{name}"
        mime = str(mime_header or meta.get("mimeType") or "application/octet-stream")
        stored = StoredFile(name, mime, str(meta.get("displayName") or ""), expected)
        upload_id = secrets.token_urlsafe(12)
        with self._lock:
            if name in self._files:
                raise ApiError(409, "ALREADY_EXISTS", f"File {name} already exists.")
            self._files[name] = stored
            self._uploads[upload_id] = name
        return upload_id

    def append(self, upload_id: str, offset: int, chunk: bytes, finalize: bool) -> StoredFile:
        """Add a chunk at `offset` (must be the current size); finalize completes the file."""
        with self._lock:
            name = self._uploads.get(upload_id)
            if name is None:
                raise not_found(f"upload {upload_id}")
            stored = self._files[name]
            if offset != len(stored.data):
                raise invalid_argument(
                    f"X-Goog-Upload-Offset {offset} does not match the {len(stored.data)} bytes "
                    "received so far."
                )
            stored.data += chunk
            if len(stored.data) > max(stored.expected_bytes, 0) and stored.expected_bytes:
                raise invalid_argument("More bytes than X-Goog-Upload-Header-Content-Length.")
            if finalize:
                stored.complete = True
                del self._uploads[upload_id]
            return stored

    def add_generated(self, data: bytes, display_name: str, mime_type: str) -> StoredFile:
        """Store a file the service made (a batch's output)."""
        name = f"files/batch-{secrets.token_hex(6)}"
        stored = StoredFile(name, mime_type, display_name, len(data), "GENERATED")
        stored.data += data
        stored.complete = True
        with self._lock:
            self._files[name] = stored
        return stored

    def get(self, name: str) -> StoredFile:
        """A complete file by `files/{id}`; 404 when unknown or still uploading."""
        with self._lock:
            stored = self._files.get(name)
        if stored is None or not stored.complete:
            raise not_found(name)
        return stored

    def delete(self, name: str) -> None:
        """Forget a file (404 when unknown)."""
        with self._lock:
            if self._files.pop(name, None) is None:
                raise not_found(name)

    def count(self) -> int:
        """How many files are stored."""
        with self._lock:
            return len(self._files)
