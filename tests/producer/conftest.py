"""Producer test fixtures: in-memory services, a recording enqueuer, and stored-turn helpers."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from shared.blobcache import BlobCache
from shared.config import load_settings
from shared.coordination import MemoryCoordinator
from shared.images import dimensions, sniff_mime
from shared.services import Services
from shared.session_spec import SessionSpec
from shared.sessions import SessionRepository
from shared.storage import MemoryStore
from shared.turn_records import BlobRef, ErrorInfo, FailureRecord, ImageInfo, ResultPart, TurnResult

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@dataclass
class RecordingEnqueuer:
    """Records every enqueued turn instead of sending it."""

    calls: list[tuple[str, int]] = field(default_factory=list)

    def enqueue_turn(
        self, sid: str, index: int, *, attempt: int = 1, countdown_s: float = 0
    ) -> None:
        self.calls.append((sid, index))


def jpeg_bytes(
    width: int = 64, height: int = 36, colour: tuple[int, int, int] = (90, 140, 90)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG")
    return out.getvalue()


def png_bytes(width: int = 40, height: int = 40) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 20, 30)).save(out, "PNG")
    return out.getvalue()


def make_services(tmp_path: Path, enqueuer: RecordingEnqueuer | None = None) -> Services:
    store = MemoryStore()
    settings = load_settings(store_url="memory://", broker_url="memory://")
    return Services(
        settings=settings,
        repo=SessionRepository(store),
        coord=MemoryCoordinator(),
        enqueuer=enqueuer or RecordingEnqueuer(),
        blobs=BlobCache(store, tmp_path / "blobcache"),
    )


@pytest.fixture
def enqueuer() -> RecordingEnqueuer:
    return RecordingEnqueuer()


@pytest.fixture
def services(tmp_path: Path, enqueuer: RecordingEnqueuer) -> Services:
    return make_services(tmp_path, enqueuer)


def store_of(services: Services) -> MemoryStore:
    """The in-memory store behind `services`."""
    store = services.repo.store
    assert isinstance(store, MemoryStore)
    return store


def spec_of(*prompts: str, **fields: object) -> SessionSpec:
    return SessionSpec.model_validate({"turns": [{"prompt": p} for p in prompts], **fields})


def commit_turn(services: Services, sid: str, index: int, data: bytes | None = None) -> TurnResult:
    """Store a committed result for turn `index`, as a worker would."""
    data = data or jpeg_bytes(colour=(index * 30 % 255, 100, 100))
    mime = sniff_mime(data) or "image/jpeg"
    ref = BlobRef(sha256=services.blobs.put(data), size_bytes=len(data), mime_type=mime)
    width, height = dimensions(data)
    result = TurnResult(
        index=index,
        parts=[ResultPart(image=ref, thought_signature="sig")],
        image=ImageInfo(
            blob=ref.sha256, mime_type=mime, width=width, height=height, bytes=len(data)
        ),
        finish_reason="STOP",
        usage={"promptTokenCount": 100, "candidatesTokenCount": 1120, "totalTokenCount": 1220},
        latency_s=1.5,
        attempt=1,
        cost_usd=0.067,
        committed_at=NOW,
    )
    services.repo.commit_result(sid, result)
    return result


def fail_turn(services: Services, sid: str, index: int, kind: str = "blocked") -> None:
    """Store a failure for the current revision of turn `index`."""
    request = services.repo.request(sid, index)
    assert request is not None
    failure = FailureRecord(
        index=index,
        error=ErrorInfo(kind=kind, status=None, message="prompt blocked: SAFETY"),
        attempts=1,
        request_revision=request.revision,
        failed_at=NOW,
    )
    services.repo.record_failure(sid, failure)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header says width x height (a decompression bomb needs no more to be caught)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
