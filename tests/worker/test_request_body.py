"""The streamed request body: valid JSON, exact Content-Length, images encoded chunk by chunk."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from shared.errors import StorageUnavailable
from shared.history import BlobData
from worker.request_body import CHUNK_RAW_BYTES, StreamingBody, b64_length

CHUNK = CHUNK_RAW_BYTES  # 196608 raw bytes


class Cache:
    """A directory of cached blobs, named by sha256, that records which blobs were opened."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.opened: list[str] = []

    def add(self, data: bytes) -> BlobData:
        digest = hashlib.sha256(data).hexdigest()
        (self.root / digest).write_bytes(data)
        return BlobData(digest, len(data))

    def path(self, digest: str) -> Path:
        self.opened.append(digest)
        return self.root / digest


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path)


def data_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed * 1_000_003 + size).randbytes(size)


def expected(payload: Any, blobs: dict[str, bytes]) -> Any:
    """The payload with every BlobData replaced by the base64 of its bytes."""
    if isinstance(payload, BlobData):
        return base64.b64encode(blobs[payload.sha256]).decode()
    if isinstance(payload, dict):
        return {k: expected(v, blobs) for k, v in payload.items()}
    if isinstance(payload, list):
        return [expected(v, blobs) for v in payload]
    return payload


def payload_with(images: list[BlobData], prompt: str = "Warm sage green walls") -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": prompt}]
    parts += [{"inlineData": {"mimeType": "image/jpeg", "data": b}} for b in images]
    return {
        "contents": [{"role": "user", "parts": parts}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]},
    }


def stream(body: StreamingBody) -> bytes:
    return b"".join(body.chunks())


@pytest.mark.parametrize(
    ("size", "length"),
    [(0, 0), (1, 4), (2, 4), (3, 4), (4, 8), (5, 8), (6, 8), (CHUNK, 262144), (CHUNK + 1, 262148)],
)
def test_b64_length_is_the_padded_base64_length(size: int, length: int) -> None:
    assert b64_length(size) == length
    assert len(base64.b64encode(b"\0" * size)) == length


def test_chunk_size_is_a_multiple_of_three_so_chunks_concatenate_without_padding() -> None:
    assert CHUNK_RAW_BYTES % 3 == 0


@pytest.mark.parametrize("size", [0, 1, 2, 3, CHUNK - 1, CHUNK, CHUNK + 1])
def test_streamed_body_is_the_payload_as_json_with_the_image_base64_encoded(
    cache: Cache, size: int
) -> None:
    data = data_of(size)
    ref = cache.add(data)
    payload = payload_with([ref])
    body = StreamingBody(payload, cache.path)
    raw = stream(body)
    assert json.loads(raw) == expected(payload, {ref.sha256: data})
    assert body.content_length == len(raw)
    assert body.image_count == 1


def test_streamed_body_carries_several_images_in_order_including_a_repeated_one(
    cache: Cache,
) -> None:
    blobs = {}
    refs = []
    for seed, size in enumerate([CHUNK * 2 + 5, 7, 0, CHUNK + 2]):
        data = data_of(size, seed)
        ref = cache.add(data)
        blobs[ref.sha256] = data
        refs.append(ref)
    refs.append(refs[0])
    payload = payload_with(refs)
    body = StreamingBody(payload, cache.path)
    raw = stream(body)
    assert json.loads(raw) == expected(payload, blobs)
    assert body.content_length == len(raw)
    assert body.image_count == 5
    assert cache.opened == [r.sha256 for r in refs]


def test_content_length_counts_utf8_bytes_of_a_non_ascii_prompt(cache: Cache) -> None:
    ref = cache.add(b"\xff\xd8\xff")
    prompt = 'Salbeigrün (#8FAF8A), «keep» 日本語 🎨 "quoted" \\ back\nslash'
    payload = payload_with([ref], prompt)
    body = StreamingBody(payload, cache.path)
    raw = stream(body)
    assert body.content_length == len(raw)
    assert json.loads(raw)["contents"][0]["parts"][0]["text"] == prompt
    assert "ü".encode() in raw  # not \u-escaped: ensure_ascii is off


def test_body_without_images_is_compact_json_and_opens_no_blob(cache: Cache) -> None:
    payload = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    body = StreamingBody(payload, cache.path)
    raw = stream(body)
    assert raw == b'{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}'
    assert body.content_length == len(raw) == 54
    assert body.image_count == 0
    assert cache.opened == []


def test_no_chunk_holds_more_than_one_encoded_chunk_of_an_image(cache: Cache) -> None:
    ref = cache.add(data_of(CHUNK * 3 + 10))
    body = StreamingBody(payload_with([ref]), cache.path)
    sizes = [len(c) for c in body.chunks()]
    assert max(sizes) == b64_length(CHUNK)
    assert sum(sizes) == body.content_length


def test_images_are_only_read_while_streaming(cache: Cache) -> None:
    ref = cache.add(b"abc")
    body = StreamingBody(payload_with([ref]), cache.path)
    assert cache.opened == []
    stream(body)
    assert cache.opened == [ref.sha256]


MARKER_PROMPTS = [
    f"@@blob:{'a' * 64}:3@@ in the middle of text",
    f"text then @@blob:{'a' * 64}:3@@",
    f'"@@blob:{"a" * 64}:3@@"',
    f'quoted "@@blob:{"a" * 64}:3@@" word',
    "@@blob:",
    '"@@blob:"',
]


@pytest.mark.parametrize("prompt", MARKER_PROMPTS)
def test_a_prompt_containing_the_blob_marker_text_cannot_inject_an_image(
    cache: Cache, prompt: str
) -> None:
    (cache.root / ("a" * 64)).write_bytes(b"XYZ")
    ref = cache.add(b"real image")
    payload = payload_with([ref], prompt)
    body = StreamingBody(payload, cache.path)
    raw = stream(body)
    assert json.loads(raw)["contents"][0]["parts"][0]["text"] == prompt
    assert body.image_count == 1
    assert cache.opened == [ref.sha256]
    assert body.content_length == len(raw)


@pytest.mark.parametrize(
    "prompt", [f"@@blob:{'a' * 64}:3@@", f'say "@@blob:{"a" * 64}:3@@'], ids=["exact", "quoted"]
)
def test_a_prompt_that_is_exactly_a_blob_marker_stays_text(cache: Cache, prompt: str) -> None:
    (cache.root / ("a" * 64)).write_bytes(b"XYZ")  # another session's cached image
    payload = payload_with([], prompt)
    body = StreamingBody(payload, cache.path)
    raw = stream(body)
    assert json.loads(raw)["contents"][0]["parts"][0]["text"] == prompt
    assert body.image_count == 0
    assert cache.opened == []


@pytest.mark.parametrize("actual_size", [0, 99, 101, CHUNK + 100])
def test_a_cached_file_of_the_wrong_size_raises_storage_unavailable(
    cache: Cache, actual_size: int
) -> None:
    data = data_of(actual_size)
    digest = hashlib.sha256(b"the real blob").hexdigest()
    (cache.root / digest).write_bytes(data)
    body = StreamingBody(payload_with([BlobData(digest, 100)]), cache.path)
    with pytest.raises(StorageUnavailable) as caught:
        stream(body)
    assert digest[:12] in str(caught.value)
    assert f"has {actual_size} bytes, expected 100" in str(caught.value)


def test_a_missing_cached_file_fails_when_streamed(cache: Cache) -> None:
    body = StreamingBody(payload_with([BlobData("b" * 64, 5)]), cache.path)
    assert body.content_length > 0
    with pytest.raises(FileNotFoundError):
        stream(body)


def test_a_payload_with_a_value_json_cannot_encode_raises_type_error(cache: Cache) -> None:
    with pytest.raises(TypeError, match="cannot serialise bytes"):
        StreamingBody({"data": b"raw bytes"}, cache.path)
