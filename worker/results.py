"""Turning an API answer into a committed turn: exact bytes to blobs, parts as returned."""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from shared.blobcache import BlobCache
from shared.images import dimensions, sniff_mime
from shared.models import Tier
from shared.responses import ApiResponse, ReturnedPart
from shared.session_records import SessionRecord
from shared.turn_records import BlobRef, ImageInfo, ResultPart, TurnRequest, TurnResult
from worker.geometry import ORB_FAST_THRESHOLD, ORB_FEATURES, Features
from worker.quality import (
    DETAIL_LONG_SIDE_PX,
    Pixels,
    decode_reduced,
    image_features,
    turn_metrics,
)

# Beside the blob in its cache (the LRU size cap covers them), named for the parameters they
# were made with, so a deploy that changes one does not reuse the old files.
DECODED_SUFFIX = f".pixels-{DETAIL_LONG_SIDE_PX}.npy"
FEATURES_SUFFIX = f".orb-{DETAIL_LONG_SIDE_PX}-{ORB_FEATURES}-{ORB_FAST_THRESHOLD}.npy"
_UNREADABLE = (OSError, ValueError, EOFError)  # missing, truncated (EOFError: empty), foreign
log = logging.getLogger("editqueue.results")


def store_part(blobs: BlobCache, part: ReturnedPart) -> ResultPart:
    """Store an image part's bytes untouched (content-addressed) and keep every other field."""
    image = None
    if part.image is not None:
        mime = sniff_mime(part.image) or part.returned_mime_type or "application/octet-stream"
        image = BlobRef(sha256=blobs.put(part.image), size_bytes=len(part.image), mime_type=mime)
    return ResultPart(
        text=part.text,
        image=image,
        returned_mime_type=part.returned_mime_type,
        thought=part.thought,
        thought_signature=part.thought_signature,
        other=part.other,
    )


def image_info(ref: BlobRef, data: bytes) -> ImageInfo:
    """The status document's view of the turn's image."""
    width, height = dimensions(data)
    return ImageInfo(
        blob=ref.sha256, mime_type=ref.mime_type, width=width, height=height, bytes=ref.size_bytes
    )


def decoded(blobs: BlobCache, sha256: str, data: bytes | None = None) -> Pixels:
    """A blob's pixels at the quality table's size, decoded once per machine: kept beside the
    blob in its cache (`<sha256>.pixels-512.npy`), so turn n+1 does not decode turn n's image."""
    path = blobs.beside(f"{sha256}{DECODED_SUFFIX}")
    with suppress(*_UNREADABLE):
        return np.asarray(np.load(path, allow_pickle=False), dtype=np.uint8)
    pixels = decode_reduced(data if data is not None else blobs.read(sha256))
    _keep_array(blobs, path, pixels)
    return pixels


def features_of(blobs: BlobCache, sha256: str, pixels: Pixels) -> Features:
    """A blob's ORB features (of its `decoded` pixels), computed once per machine: turn n's are
    matched again as turn n+1's predecessor (`<sha256>.orb-512-500-8.npy` beside the blob)."""
    path = blobs.beside(f"{sha256}{FEATURES_SUFFIX}")
    with suppress(*_UNREADABLE):
        return Features.unpacked(np.load(path, allow_pickle=False))
    found = image_features(pixels)
    _keep_array(blobs, path, found.packed())
    return found


def _keep_array(blobs: BlobCache, path: Path, array: np.ndarray[Any, Any]) -> None:
    with suppress(OSError):  # a full disk costs a recomputation later, nothing else
        blobs.keep_beside(path.name, lambda handle: np.save(handle, array, allow_pickle=False))


def quality_metrics(
    blobs: BlobCache,
    previous: TurnResult | None,
    request: TurnRequest,
    current_sha: str,
    data: bytes | None = None,
) -> dict[str, float]:
    """The quality table's numbers of the blob `current_sha` (its bytes `data` when at hand)
    against turn n-1's image (turn 1: its own); {} on error."""
    try:
        now = decoded(blobs, current_sha, data)
        before, known = None, None
        if previous is not None:
            before = decoded(blobs, previous.image.blob)
            known = (
                features_of(blobs, previous.image.blob, before),
                features_of(blobs, current_sha, now),
            )
        mask = blobs.read(request.mask.sha256) if request.mask is not None else None
        return turn_metrics(request.prompt, before, now, mask, known)
    except Exception:  # a quality signal must never fail or block a paid-for turn
        log.warning("quality metrics failed for turn %d", request.index, exc_info=True)
        return {}


def build_result(
    *,
    blobs: BlobCache,
    record: SessionRecord,
    request: TurnRequest,
    response: ApiResponse,
    chosen: ReturnedPart,
    attempt: int,
    now: datetime,
    cost_usd: float,
    previous: TurnResult | None = None,
    tier: str | None = None,
    deferred: bool = False,
    previous_metrics: dict[str, float] | None = None,
) -> TurnResult:
    """A `TurnResult` for the answer; `chosen` is the non-thought image part to show.

    `previous` is turn n-1's result: the quality metrics compare against its image. `deferred`:
    leave them to turn n+1 (worker/measuring.py), which also brings `previous_metrics`.
    """
    parts = [store_part(blobs, part) for part in response.parts]
    main = next(p for p, raw in zip(parts, response.parts, strict=True) if raw is chosen)
    assert main.image is not None and chosen.image is not None
    return TurnResult(
        index=request.index,
        parts=parts,
        image=image_info(main.image, chosen.image),
        finish_reason=response.finish_reason,
        usage=response.usage,
        model_version=response.model_version,
        response_id=response.response_id,
        latency_s=round(response.latency_s, 3),
        attempt=attempt,
        cost_usd=cost_usd,
        request_revision=request.revision,
        committed_at=now,
        metrics={}
        if deferred
        else quality_metrics(blobs, previous, request, main.image.sha256, chosen.image),
        metrics_deferred=deferred,
        previous_metrics=previous_metrics,
        tier=Tier(tier) if tier else None,
    )
