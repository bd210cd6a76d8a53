"""Worker test fixtures: in-memory services around a scripted API."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from shared.blobcache import BlobCache
from shared.config import Settings, load_settings
from shared.coordination import MemoryCoordinator
from shared.responses import ApiResponse, ReturnedPart
from shared.session_index import SessionIndex
from shared.session_records import SessionRecord
from shared.session_spec import HistoryPolicy
from shared.sessions import SessionRepository
from shared.storage import MemoryStore
from shared.turn_records import TurnRequest
from tests.fakes import FakeGeminiClient, Outcome
from worker.wiring import WorkerServices

KEY = "AIza-test-secret-key-0042"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@dataclass
class RecordingEnqueuer:
    """Records every enqueued turn (sid, index, attempt, countdown) instead of sending it."""

    calls: list[tuple[str, int, int, float]] = field(default_factory=list)

    def enqueue_turn(
        self, sid: str, index: int, *, attempt: int = 1, countdown_s: float = 0
    ) -> None:
        self.calls.append((sid, index, attempt, countdown_s))


def jpeg(colour: tuple[int, int, int] = (120, 140, 120), size: tuple[int, int] = (64, 36)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def answer(
    image: bytes | None = None, *, signature: str = "sig-img", text: str = "Here."
) -> ApiResponse:
    """A 200 answer shaped like NB2's: a signed text part, then a signed image part."""
    parts = [ReturnedPart(text=text, thought_signature="sig-text")]
    if image is not None:
        parts.append(
            ReturnedPart(image=image, returned_mime_type="image/png", thought_signature=signature)
        )
    return ApiResponse(
        parts=parts,
        finish_reason="STOP",
        usage={"promptTokenCount": 100, "candidatesTokenCount": 1680},
        model_version="gemini-3.1-flash-image",
        latency_s=0.5,
    )


@dataclass
class World:
    """Services plus handles on their fakes."""

    services: WorkerServices
    gemini: FakeGeminiClient
    enqueuer: RecordingEnqueuer
    coord: MemoryCoordinator
    store: MemoryStore

    @property
    def repo(self) -> SessionRepository:
        return self.services.repo

    def session(self, prompts: list[str], history: HistoryPolicy | None = None) -> str:
        sid = "s1"
        record = SessionRecord(
            session_id=sid,
            model="gemini-3.1-flash-image",
            aspect_ratio="16:9",
            image_size="2K",
            history=history or HistoryPolicy(),
            created_at=NOW,
        )
        assert self.repo.create_session(record)
        for n, prompt in enumerate(prompts, start=1):
            self.repo.add_request(sid, TurnRequest(index=n, prompt=prompt, created_at=NOW))
        SessionIndex(self.repo.store).mark_open(sid)  # as submit does
        return sid


def make_world(tmp_path: Path, outcomes: list[Outcome], **overrides: object) -> World:
    settings: Settings = load_settings(
        store_url="memory://",
        broker_url="memory://",
        api_key=KEY,
        backoff_base_s=1.0,
        backoff_max_s=8.0,
        **overrides,
    )
    store = MemoryStore()
    coord = MemoryCoordinator()
    gemini = FakeGeminiClient(outcomes)
    enqueuer = RecordingEnqueuer()
    services = WorkerServices(
        settings=settings,
        repo=SessionRepository(store),
        coord=coord,
        enqueuer=enqueuer,
        gemini=gemini,
        blobs=BlobCache(store, tmp_path / "cache"),
    )
    return World(services, gemini, enqueuer, coord, store)
