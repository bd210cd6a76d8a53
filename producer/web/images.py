"""A turn's image over HTTP: a redirect to a presigned S3 URL that expires, or the exact bytes."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from fastapi.responses import FileResponse, RedirectResponse, Response

from producer.web.errors import ApiError
from shared.keys import blob_key
from shared.services import Services

PRESIGN_EXPIRES_S = 900
IMMUTABLE = "private, max-age=31536000, immutable"  # a blob's bytes never change


@runtime_checkable
class Presigner(Protocol):
    """A store that can hand out time-limited GET URLs (S3)."""

    def presigned_url(self, key: str, expires_s: int = ..., *, content_type: str = "") -> str:
        """A URL anyone may GET until it expires."""
        ...


def image_response(services: Services, sid: str, index: int) -> Response:
    """307 to a presigned URL (S3, unless EDITQUEUE_API_PRESIGN_IMAGES=false), else the bytes."""
    result = services.repo.result(sid, index)
    if result is None:
        raise ApiError(404, "not_found", f"turn {index} of {sid} has no image (yet)")
    sha, mime = result.image.blob, result.image.mime_type
    store = services.repo.store
    if services.settings.http_presign_images and isinstance(store, Presigner):
        url = store.presigned_url(blob_key(sha), PRESIGN_EXPIRES_S, content_type=mime)
        cache = f"private, max-age={PRESIGN_EXPIRES_S // 3}"
        return RedirectResponse(url, status_code=307, headers={"cache-control": cache})
    headers = {"cache-control": IMMUTABLE, "etag": f'"{sha}"'}
    return FileResponse(services.blobs.path(sha), media_type=mime, headers=headers)
