"""S3Store against moto (in-process and over HTTP), stubbed failures and a local stub server."""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import threading
import tracemalloc
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber
from moto import mock_aws
from moto.server import ThreadedMotoServer

from shared.errors import ObjectNotFound, StorageUnavailable
from shared.s3 import MAX_RETRIES, S3Store

BUCKET = "editqueue-test"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def store(aws_env: None) -> Iterator[S3Store]:
    with mock_aws():
        s3 = S3Store(BUCKET, "team/editqueue/")
        s3.ensure_bucket()
        yield s3


def _raw_keys(store: S3Store) -> list[str]:
    response = store.client.list_objects_v2(Bucket=BUCKET)
    return [item["Key"] for item in response.get("Contents", [])]


def test_put_then_get_returns_the_same_bytes_under_the_prefix(store: S3Store) -> None:
    store.put("sessions/s1/session.json", b'{"model": "m"}')
    assert store.get("sessions/s1/session.json") == b'{"model": "m"}'
    assert _raw_keys(store) == ["team/editqueue/sessions/s1/session.json"]


@pytest.mark.parametrize(("prefix", "stored"), [("", "k"), ("p", "p/k"), ("/a/b/", "a/b/k")])
def test_prefix_is_normalised_to_one_trailing_slash(
    aws_env: None, prefix: str, stored: str
) -> None:
    with mock_aws():
        s3 = S3Store(BUCKET, prefix)
        s3.ensure_bucket()
        s3.put("k", b"x")
        assert _raw_keys(s3) == [stored]
        assert list(s3.list("")) == ["k"]


def test_ensure_bucket_twice_is_harmless(store: S3Store) -> None:
    store.ensure_bucket()
    store.put("k", b"x")
    assert store.exists("k")


def test_put_if_absent_creates_once_and_keeps_the_first_body(store: S3Store) -> None:
    assert store.put_if_absent("turns/0001/result.json", b"first") is True
    assert store.put_if_absent("turns/0001/result.json", b"second") is False
    assert store.get("turns/0001/result.json") == b"first"


def test_sixteen_threads_racing_put_if_absent_yield_exactly_one_winner(store: S3Store) -> None:
    barrier = threading.Barrier(16)
    results: dict[int, bool] = {}

    def attempt(i: int) -> None:
        barrier.wait()
        results[i] = store.put_if_absent("race/result.json", f"writer {i}".encode())

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, created in results.items() if created]
    assert len(results) == 16
    assert len(winners) == 1
    assert store.get("race/result.json") == f"writer {winners[0]}".encode()


def test_list_pages_through_all_keys_in_lexical_order_relative_to_the_prefix(
    aws_env: None,
) -> None:
    with mock_aws():
        s3 = S3Store(BUCKET, "pre", page_size=2)
        s3.ensure_bucket()
        keys = [f"sessions/s1/turns/{n:04d}/request.json" for n in (3, 1, 5, 2, 4)]
        for key in keys:
            s3.put(key, b"{}")
        s3.put("blobs/sha256/aa", b"x")
        s3.client.put_object(Bucket=BUCKET, Key="presessions/outside", Body=b"x")
        calls: list[str] = []
        s3.client.meta.events.register(
            "before-call.s3.ListObjectsV2", lambda **kwargs: calls.append("list")
        )
        assert list(s3.list("sessions/s1/")) == sorted(keys)
        assert len(calls) == 3  # 5 keys at 2 per page


def test_list_of_an_empty_prefix_yields_nothing(store: S3Store) -> None:
    assert list(store.list("sessions/none/")) == []


def test_exists_and_delete(store: S3Store) -> None:
    assert store.exists("cancel") is False
    store.put("cancel", b"")
    assert store.exists("cancel") is True
    store.delete("cancel")
    store.delete("cancel")  # deleting a missing object is not an error
    assert store.exists("cancel") is False


def test_get_of_a_missing_key_raises_object_not_found(store: S3Store) -> None:
    with pytest.raises(ObjectNotFound):
        store.get("sessions/none/session.json")


def test_download_to_of_a_missing_key_raises_and_leaves_no_file(
    store: S3Store, tmp_path: Path
) -> None:
    with pytest.raises(ObjectNotFound):
        store.download_to("missing", tmp_path / "out.bin")
    assert list(tmp_path.iterdir()) == []


def test_download_to_writes_a_12_mb_object_byte_for_byte(store: S3Store, tmp_path: Path) -> None:
    data = os.urandom(12 * 1024 * 1024)
    store.put("blobs/sha256/big", data)
    target = tmp_path / "cache" / "big.bin"
    store.download_to("blobs/sha256/big", target)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert [p.name for p in target.parent.iterdir()] == ["big.bin"]  # no temp file left


class _DripBody:
    """A streaming body that makes 12 MB on demand, so only the consumer can hold it all."""

    def __init__(self, total: int, chunk: int = 256 * 1024) -> None:
        self.total, self.chunk = total, chunk

    def iter_chunks(self, chunk_size: int = 1024) -> Iterator[bytes]:
        for start in range(0, self.total, self.chunk):
            yield bytes([start // self.chunk % 256]) * min(self.chunk, self.total - start)


class _DripClient:
    def __init__(self, total: int) -> None:
        self.total = total

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        return {"Body": _DripBody(self.total)}


def test_download_to_streams_without_holding_the_object_in_memory(tmp_path: Path) -> None:
    total = 12 * 1024 * 1024
    s3 = S3Store(BUCKET, "", client=_DripClient(total))
    tracemalloc.start()
    try:
        s3.download_to("blob", tmp_path / "blob.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / "blob.bin").stat().st_size == total
    assert peak < 3 * 1024 * 1024


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", ".."])
def test_unsafe_keys_are_refused_before_any_request(store: S3Store, key: str) -> None:
    with pytest.raises(ValueError, match="invalid object key"):
        store.get(key)
    with pytest.raises(ValueError):
        store.put_if_absent(key, b"x")


def test_presigned_url_names_the_key_and_carries_a_signature(store: S3Store) -> None:
    url = store.presigned_url("blobs/sha256/abc", expires_s=60)
    assert "team/editqueue/blobs/sha256/abc" in url
    assert "X-Amz-Signature=" in url
    assert "X-Amz-Expires=60" in url


# --- failures: every botocore error comes out as one of ours ----------------------------------


def _stubbed(aws_env: None) -> tuple[S3Store, Stubber]:
    s3 = S3Store(BUCKET, "p")
    return s3, Stubber(s3.client)


def test_a_500_from_s3_becomes_storage_unavailable_with_the_status(aws_env: None) -> None:
    s3, stub = _stubbed(aws_env)
    stub.add_client_error("get_object", "InternalError", "boom", http_status_code=500)
    with stub, pytest.raises(StorageUnavailable) as caught:
        s3.get("k")
    assert caught.value.status == 500
    assert "botocore" not in type(caught.value).__module__
    assert caught.value.__cause__ is not None


def test_slow_down_on_put_becomes_storage_unavailable(aws_env: None) -> None:
    s3, stub = _stubbed(aws_env)
    stub.add_client_error("put_object", "SlowDown", "reduce rate", http_status_code=503)
    with stub, pytest.raises(StorageUnavailable, match="503 SlowDown"):
        s3.put_if_absent("k", b"x")


def test_a_missing_bucket_is_reported_as_such(aws_env: None) -> None:
    s3, stub = _stubbed(aws_env)
    stub.add_client_error("put_object", "NoSuchBucket", "no bucket", http_status_code=404)
    with stub, pytest.raises(StorageUnavailable, match="bucket does not exist"):
        s3.put("k", b"x")


def test_a_409_conflict_rechecks_and_reports_a_lost_race(aws_env: None) -> None:
    s3, stub = _stubbed(aws_env)
    stub.add_client_error(
        "put_object", "ConditionalRequestConflict", "conflict", http_status_code=409
    )
    stub.add_response("head_object", {"ContentLength": 5})
    with stub:
        assert s3.put_if_absent("k", b"x") is False
    stub.assert_no_pending_responses()


def test_a_409_conflict_with_no_winner_retries_the_conditional_put(aws_env: None) -> None:
    s3, stub = _stubbed(aws_env)
    stub.add_client_error(
        "put_object", "ConditionalRequestConflict", "conflict", http_status_code=409
    )
    stub.add_client_error("head_object", "404", "Not Found", http_status_code=404)
    stub.add_response("put_object", {"ETag": '"e"'})
    with stub:
        assert s3.put_if_absent("k", b"x") is True
    stub.assert_no_pending_responses()


class _RaisingClient:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise self.exc

        return fail


@pytest.mark.parametrize(
    "exc",
    [
        EndpointConnectionError(endpoint_url="http://s3.invalid"),
        ReadTimeoutError(endpoint_url="http://s3.invalid"),
    ],
    ids=["connection", "read-timeout"],
)
def test_connection_and_timeout_errors_become_storage_unavailable(
    tmp_path: Path, exc: Exception
) -> None:
    s3 = S3Store(BUCKET, "p", client=_RaisingClient(exc))
    calls = [
        lambda: s3.get("k"),
        lambda: s3.put("k", b"x"),
        lambda: s3.put_if_absent("k", b"x"),
        lambda: s3.exists("k"),
        lambda: list(s3.list("")),
        lambda: s3.delete("k"),
        lambda: s3.download_to("k", tmp_path / "f"),
        lambda: s3.ensure_bucket(),
    ]
    for call in calls:
        with pytest.raises(StorageUnavailable) as caught:
            call()
        assert caught.value.__cause__ is exc
    assert list(tmp_path.iterdir()) == []


# --- retries over real HTTP ---------------------------------------------------------------------


class _FlakyS3(http.server.BaseHTTPRequestHandler):
    """Answers GETs with 500 for the first `failures` requests, then with the body."""

    failures = 0
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        if len(self.seen) <= self.failures:
            body = b"<Error><Code>InternalError</Code><Message>x</Message></Error>"
            self.send_response(500)
        else:
            body = b"payload"
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def flaky_server(aws_env: None) -> Iterator[tuple[str, type[_FlakyS3]]]:
    handler = type("Handler", (_FlakyS3,), {"seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_transient_500s_are_retried_until_the_get_succeeds(
    flaky_server: tuple[str, type[_FlakyS3]],
) -> None:
    url, handler = flaky_server
    handler.failures = 2
    s3 = S3Store(BUCKET, "p", endpoint_url=url)
    assert s3.get("k") == b"payload"
    assert handler.seen == [f"/{BUCKET}/p/k"] * 3  # path-style addressing on custom endpoints


def test_persistent_500s_give_up_after_the_configured_attempts(
    flaky_server: tuple[str, type[_FlakyS3]],
) -> None:
    url, handler = flaky_server
    handler.failures = 100
    s3 = S3Store(BUCKET, "p", endpoint_url=url)
    with pytest.raises(StorageUnavailable) as caught:
        s3.get("k")
    assert caught.value.status == 500
    assert len(handler.seen) == 1 + MAX_RETRIES


def test_a_refused_connection_becomes_storage_unavailable(aws_env: None) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before use: nothing listens there
    s3 = S3Store(BUCKET, "p", endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(StorageUnavailable, match="unreachable"):
        s3.exists("k")


@pytest.mark.integration
def test_conditional_put_over_real_http_against_moto_server(aws_env: None, tmp_path: Path) -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = S3Store(BUCKET, "it", endpoint_url=f"http://{host}:{port}")
        s3.ensure_bucket()
        assert s3.put_if_absent("sessions/s/turns/0001/result.json", b"first") is True
        assert s3.put_if_absent("sessions/s/turns/0001/result.json", b"second") is False
        assert s3.get("sessions/s/turns/0001/result.json") == b"first"
        with urllib.request.urlopen(s3.presigned_url("sessions/s/turns/0001/result.json")) as r:
            assert r.read() == b"first"
        barrier = threading.Barrier(16)
        results: dict[int, bool] = {}

        def attempt(i: int) -> None:
            barrier.wait()
            results[i] = s3.put_if_absent("sessions/s/turns/0002/request.json", b"w%d" % i)

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [i for i, created in results.items() if created]
        assert len(results) == 16 and len(winners) == 1
        assert s3.get("sessions/s/turns/0002/request.json") == b"w%d" % winners[0]
    finally:
        server.stop()


def test_every_put_names_its_bodys_sha256_and_botocore_hashes_no_body(store: S3Store) -> None:
    sent: list[dict[str, str]] = []

    def keep(request: Any, **_: Any) -> None:
        sent.append({name.lower(): _text(value) for name, value in request.headers.items()})

    store.client.meta.events.register("before-send.s3.PutObject", keep)
    image = os.urandom(300_000)
    sha = hashlib.sha256(image).hexdigest()
    store.put_if_absent(f"blobs/sha256/{sha}", image)
    store.put("sessions/s/session.json", b'{"a": 1}')
    # Bytes that are not what the blob key names: the header carries the key's digest, so a
    # store that checks it (S3, MinIO, R2) refuses them; moto does not check.
    store.put_if_absent(f"blobs/sha256/{'0' * 64}", b"not zeros")

    assert [request["x-amz-checksum-sha256"] for request in sent] == [
        base64.b64encode(bytes.fromhex(sha)).decode(),
        base64.b64encode(hashlib.sha256(b'{"a": 1}').digest()).decode(),
        base64.b64encode(bytes(32)).decode(),
    ]
    assert {request["x-amz-content-sha256"] for request in sent} == {"UNSIGNED-PAYLOAD"}
    assert store.get(f"blobs/sha256/{sha}") == image


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
