"""Hostile input over HTTP against a real `editqueue api` (real Redis, moto's S3 server).

Each row sends one bad request and asserts the status, that the message names the problem, and
that the bucket and the Redis database are byte for byte what they were. Then a flood: 50
concurrent oversized specs while `/healthz` keeps answering within 1 s, and SIGTERM under load.
Webhook rows use literal addresses (parsed, never contacted); no request leaves loopback.
"""

from __future__ import annotations

import base64
import io
import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis
import requests
from PIL import Image

from tests.integration.services import Stack, wait_until
from tests.integration.test_http_api import ACME, GLOBEX, WEBHOOK_SECRET, Api, auth, start_api
from tests.producer.conftest import png_claiming

pytestmark = pytest.mark.integration

BUCKET = "editqueue-hostile"
REDIS_DB = 6
JSON = {"content-type": "application/json"}


def real_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 120, 90)).save(out, "PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def session(*turns: dict[str, Any], **fields: Any) -> bytes:
    return json.dumps({"image_size": "1K", "turns": list(turns), **fields}).encode()


def turn(prompt: str = "a room", **fields: Any) -> dict[str, Any]:
    return {"prompt": prompt, **fields}


DEEP = b"[" * 50_000 + b"]" * 50_000
SID = "target-room"  # a session of acme's that the rows aim at


@dataclass(frozen=True)
class Row:
    name: str
    path: str
    body: bytes
    status: int
    says: tuple[str, ...]
    headers: tuple[tuple[str, str], ...] = ()


ROWS = [
    Row("null body", "/v1/sessions", b"null", 422, ("got a null",)),
    Row("null turn", f"/v1/sessions/{SID}/turns", b"null", 422, ("body", "valid dictionary")),
    Row("null fork", f"/v1/sessions/{SID}/fork", b"null", 422, ("body", "valid dictionary")),
    Row("deep JSON", "/v1/sessions", DEEP, 400, ("nested too deeply",)),
    Row(
        "deep JSON + Idempotency-Key",
        "/v1/sessions",
        DEEP,
        400,
        ("nested too deeply",),
        (("Idempotency-Key", "deep-1"),),
    ),
    Row(
        "budget Infinity",
        "/v1/sessions",
        b'{"budget_usd": Infinity, "turns": [{"prompt": "a"}]}',
        422,
        ("budget_usd", "finite"),
    ),
    Row(
        "budget NaN",
        "/v1/sessions",
        b'{"budget_usd": NaN, "turns": [{"prompt": "a"}]}',
        422,
        ("budget_usd", "finite"),
    ),
    Row(
        "lone surrogate in a prompt",
        "/v1/sessions",
        b'{"turns": [{"prompt": "a"}, {"prompt": "b \\ud800"}]}',
        422,
        ("turns[1].prompt", "surrogate"),
    ),
    Row(
        "lone surrogate in metadata",
        "/v1/sessions",
        b'{"metadata": {"k": "\\udfff"}, "turns": [{"prompt": "a"}]}',
        422,
        ("metadata.k", "surrogate"),
    ),
    Row(
        "lone surrogate in an appended turn",
        f"/v1/sessions/{SID}/turns",
        b'{"prompt": "\\ud800"}',
        422,
        ("prompt", "surrogate"),
    ),
    Row(
        "too many turns",
        "/v1/sessions",
        session(*[turn()] * 501),
        422,
        ("501 turns", "EDITQUEUE_MAX_TURNS"),
    ),
    Row(
        "prompt too long",
        "/v1/sessions",
        session(turn("x" * 20_001)),
        422,
        ("turns[0].prompt", "EDITQUEUE_MAX_PROMPT_CHARS"),
    ),
    Row(
        "metadata too big",
        "/v1/sessions",
        session(turn(), metadata={"blob": "m" * 20_000}),
        422,
        ("metadata", "EDITQUEUE_MAX_METADATA_BYTES"),
    ),
    Row(
        "model id too long",
        "/v1/sessions",
        session(turn(), model="m" * 300),
        422,
        ("model", "EDITQUEUE_MAX_MODEL_CHARS"),
    ),
    Row(
        "too many reference images",
        "/v1/sessions",
        session(turn(images=[b64(real_png())] * 15)),
        422,
        ("turns[0].images", "EDITQUEUE_MAX_REFERENCE_IMAGES"),
    ),
    Row(
        "a 20000x20000 PNG bomb",
        "/v1/sessions",
        session(turn(images=[b64(png_claiming(20_000, 20_000))])),
        422,
        ("turns[0].images[0]", "EDITQUEUE_MAX_IMAGE_PIXELS"),
    ),
    Row(
        "GIF magic, HTML inside",
        "/v1/sessions",
        session(turn(images=[b64(b"GIF89a<html><script>alert(1)</script></html>")])),
        422,
        ("turns[0].images[0]", "does not decode"),
    ),
    Row(
        "a PNG bomb appended",
        f"/v1/sessions/{SID}/turns",
        json.dumps(turn(images=[b64(png_claiming(30_000, 30_000))])).encode(),
        422,
        ("EDITQUEUE_MAX_IMAGE_PIXELS",),
    ),
    Row(
        "webhook to cloud metadata",
        "/v1/sessions",
        session(turn(), webhook_url="http://169.254.169.254/latest/meta-data/"),
        422,
        ("webhook_url", "link-local"),
    ),
    Row(
        "webhook to Redis as IPv4-mapped IPv6",
        "/v1/sessions",
        session(turn(), webhook_url="http://[::ffff:127.0.0.1]:6379/"),
        422,
        ("webhook_url", "loopback"),
    ),
    Row(
        "webhook to loopback in decimal",
        "/v1/sessions",
        session(turn(), webhook_url="http://2130706433:6379/"),
        422,
        ("webhook_url", "loopback"),
    ),
    Row(
        "webhook to a private range with userinfo",
        "/v1/sessions",
        session(turn(), webhook_url="http://hooks.example@10.0.0.7/x"),
        422,
        ("webhook_url", "private"),
    ),
    Row(
        "webhook to CGNAT",
        "/v1/sessions",
        session(turn(), webhook_url="https://100.64.1.1/x"),
        422,
        ("webhook_url", "CGNAT"),
    ),
    Row(
        "another tenant's id is not this tenant's collision, but its own is",
        "/v1/sessions",
        session(turn(), session_id=SID),
        409,
        (f"session id {SID} already exists",),
    ),
    Row(
        "a body over the limit",
        "/v1/sessions",
        session(turn("y" * 300_000)),
        413,
        ("300,000-byte limit",),
    ),
]


def snapshot(api: Api) -> tuple[dict[str, str], dict[bytes, bytes | None]]:
    """Every object in the test's prefix (by ETag) and every Redis key (DUMPed)."""
    s3 = boto3.client(
        "s3",
        endpoint_url=api.stack.s3_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    objects: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=api.stack.prefix
    ):
        objects.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    db = redis.Redis(port=api.stack.redis_port, db=REDIS_DB)
    return objects, {key: db.dump(key) for key in sorted(db.keys("*"))}


@pytest.fixture(scope="module")
def hostile_api(
    tmp_path_factory: pytest.TempPathFactory, redis_port: int, s3_url: str, emulator_url: str
) -> Iterator[Api]:
    boto3.client(
        "s3",
        endpoint_url=s3_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=BUCKET)
    redis.Redis(port=redis_port, db=REDIS_DB).flushdb()
    stack = Stack(tmp_path_factory.mktemp("hostile"), redis_port, s3_url, emulator_url, BUCKET)
    stack.extra_env.update(
        EDITQUEUE_BROKER_URL=f"redis://127.0.0.1:{redis_port}/{REDIS_DB}",
        EDITQUEUE_API_TOKENS=f"{ACME}=acme,{GLOBEX}=globex",
        EDITQUEUE_WEBHOOK_SECRET=WEBHOOK_SECRET,  # no allowed networks: the default rules
        EDITQUEUE_API_MAX_BODY_BYTES="300000",
        EDITQUEUE_API_MAX_CONCURRENCY="8",
        EDITQUEUE_API_MAX_BODY_BYTES_IN_FLIGHT="500000",
        EDITQUEUE_API_SHUTDOWN_S="2",
        EDITQUEUE_API_HEADER_TIMEOUT_S="1",
        EDITQUEUE_API_BODY_TIMEOUT_S="1",
        EDITQUEUE_API_PUBLIC_URL="https://editqueue.example.test",
    )
    server = start_api(stack)
    created = server.post("/v1/sessions", data=session(turn(), session_id=SID), headers=JSON)
    assert created.status_code == 201, created.text
    yield server
    server.proc.kill()


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_a_hostile_request_is_refused_naming_the_problem_and_changes_nothing(
    hostile_api: Api, row: Row
) -> None:
    before = snapshot(hostile_api)

    answer = hostile_api.post(row.path, data=row.body, headers={**JSON, **dict(row.headers)})

    assert answer.status_code == row.status, answer.text
    message = answer.json()["error"]["message"]
    for words in row.says:
        assert words in message, message
    assert snapshot(hostile_api) == before


def test_the_same_client_id_in_two_tenants_is_two_sessions_and_no_oracle(
    hostile_api: Api,
) -> None:
    # Before globex creates it, acme's session is unknown to globex: 404, not "exists".
    assert hostile_api.get(f"/v1/sessions/{SID}", token=GLOBEX).status_code == 404

    theirs = hostile_api.post(
        "/v1/sessions", token=GLOBEX, data=session(turn("b"), session_id=SID), headers=JSON
    )

    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["session_id"] == SID
    mine = hostile_api.get(f"/v1/sessions/{SID}").json()
    other = hostile_api.get(f"/v1/sessions/{SID}", token=GLOBEX).json()
    assert [t["prompt"] for t in mine["turns"]] == ["a room"]
    assert [t["prompt"] for t in other["turns"]] == ["b"]


def test_urls_come_from_the_public_base_never_from_the_host_header(hostile_api: Api) -> None:
    answer = hostile_api.post(
        "/v1/sessions",
        data=session(turn()),
        headers={**JSON, "Host": "evil.example:666", "X-Forwarded-Host": "evil.example"},
    )

    assert answer.status_code == 201, answer.text
    doc = answer.json()
    assert doc["status_url"].startswith("https://editqueue.example.test/v1/sessions/")
    assert doc["gallery_url"].startswith("https://editqueue.example.test/ui/sessions/")
    assert "evil" not in json.dumps(doc) and "evil" not in answer.headers["location"]


def oversized_spec() -> bytes:
    """10,000 turns in ~150 KB: refused by the turn limit at once (it used to pin a CPU)."""
    return session(*[turn(f"edit {n}") for n in range(10_000)])


def flood(api: Api, count: int) -> list[int]:
    statuses: list[int] = []
    body = oversized_spec()

    def one() -> None:
        try:
            answer = requests.post(
                f"{api.url}/v1/sessions", data=body, headers=auth(ACME, **JSON), timeout=60
            )
            statuses.append(answer.status_code)
        except requests.RequestException:
            statuses.append(0)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_fifty_concurrent_oversized_specs_do_not_stop_healthz(hostile_api: Api) -> None:
    slowest = 0.0
    done = threading.Event()
    statuses: list[int] = []
    worker = threading.Thread(target=lambda: (statuses.extend(flood(hostile_api, 50)), done.set()))
    worker.start()
    while not done.is_set():
        started = time.monotonic()
        assert requests.get(f"{hostile_api.url}/healthz", timeout=1).ok
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.05)
    worker.join()

    print(f"healthz: slowest answer {slowest * 1000:.0f} ms during 50 concurrent 10,000-turn POSTs")
    assert slowest < 1.0
    assert len(statuses) == 50 and set(statuses) <= {422, 503}, statuses


def test_sigterm_stops_the_server_within_seconds_under_load(
    hostile_api: Api, tmp_path: Path
) -> None:
    server = start_api(hostile_api.stack)  # a second server of the same stack, to stop
    load = threading.Thread(target=flood, args=(server, 50))
    load.start()
    time.sleep(0.2)
    started = time.monotonic()
    server.proc.popen.send_signal(signal.SIGTERM)

    wait_until(lambda: server.proc.popen.poll() is not None, 15, "the API server to exit")

    elapsed = time.monotonic() - started
    load.join()
    print(f"SIGTERM under load: exited in {elapsed:.1f} s")
    assert elapsed < 10


def connect(api: Api) -> socket.socket:
    host, port = api.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def closed_after(sock: socket.socket) -> tuple[float, bytes]:
    """Seconds until the server ends the connection, and what it said before."""
    started, said = time.monotonic(), b""
    while chunk := sock.recv(4096):
        said += chunk
    return time.monotonic() - started, said


def test_a_client_trickling_its_request_head_is_disconnected(hostile_api: Api) -> None:
    sock = connect(hostile_api)
    sock.sendall(b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\n")
    stop = threading.Event()

    def trickle() -> None:  # one header byte every 0.3 s: each resets uvicorn's keep-alive timer
        while not stop.wait(0.3):
            try:
                sock.sendall(b"X")
            except OSError:
                return

    threading.Thread(target=trickle, daemon=True).start()
    elapsed, said = closed_after(sock)
    stop.set()
    sock.close()

    assert elapsed < 4  # EDITQUEUE_API_HEADER_TIMEOUT_S=1
    assert said == b""


def test_a_client_trickling_its_body_gets_408(hostile_api: Api) -> None:
    sock = connect(hostile_api)
    head = (
        f"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ACME}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    sock.sendall(head.encode())

    elapsed, said = closed_after(sock)
    sock.close()

    assert elapsed < 4  # EDITQUEUE_API_BODY_TIMEOUT_S=1
    assert said.startswith(b"HTTP/1.1 408") and b"EDITQUEUE_API_BODY_TIMEOUT_S" in said


def test_past_the_concurrency_limit_requests_get_503_with_retry_after(hostile_api: Api) -> None:
    held = []
    head = (
        f"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ACME}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    for _ in range(8):  # EDITQUEUE_API_MAX_CONCURRENCY=8, each waiting for its body
        sock = connect(hostile_api)
        sock.sendall(head.encode())
        held.append(sock)
    time.sleep(0.3)

    answer = hostile_api.post("/v1/sessions", data=session(turn()), headers=JSON)
    health = requests.get(f"{hostile_api.url}/healthz", timeout=1)
    for sock in held:
        sock.close()

    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "1"
    assert "EDITQUEUE_API_MAX_CONCURRENCY" in answer.json()["error"]["message"]
    assert health.ok


def test_past_the_body_bytes_in_flight_large_bodies_wait_and_small_ones_pass(
    hostile_api: Api,
) -> None:
    time.sleep(1.5)  # earlier tests' held requests end by the body deadline (1 s)
    sock = connect(hostile_api)  # declares 300,000 bytes, sends none: held in flight
    sock.sendall(
        f"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ACME}\r\n"
        "Content-Type: application/json\r\nContent-Length: 300000\r\n\r\n".encode()
    )
    time.sleep(0.3)

    large = hostile_api.post("/v1/sessions", data=session(turn("z" * 250_000)), headers=JSON)
    small = hostile_api.post("/v1/sessions", data=session(turn()), headers=JSON)
    sock.close()

    assert large.status_code == 503, large.text
    assert "EDITQUEUE_API_MAX_BODY_BYTES_IN_FLIGHT" in large.json()["error"]["message"]
    assert large.headers["retry-after"] == "1"
    assert small.status_code == 201, small.text
