"""The HTTP client against a tiny local server: success, errors, total deadline, key hygiene."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from pydantic import SecretStr

from shared.errors import (
    ConnectionFailed,
    EditQueueError,
    MalformedResponse,
    NoImage,
    PermanentError,
    RateLimited,
    ServerError,
    Timeout,
)
from shared.gemini import HttpGeminiClient
from shared.request_body import BytesBody
from shared.responses import ApiResponse, ReturnedPart
from tests.fakes import FakeGeminiClient

KEY = "AIzaSyFAKE-editqueue-Qx7_never-log-me"
MODEL = "gemini-3.1-flash-image"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64
Behaviour = Callable[["_Handler"], None]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the default backlog of 5 resets some of 24 simultaneous connects

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.behaviour: Behaviour = lambda handler: _reply(handler, 200, _success_body())
        self.received: list[Received] = []
        self.clients: set[tuple[str, int]] = set()  # client addresses: one per connection
        self.stop = threading.Event()  # set at teardown so hanging handlers end


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.received.append(Received(self.path, dict(self.headers.items()), body))
        self.server.clients.add(self.client_address[:2])
        if len(body) == length:
            # the client gives up and closes in several tests; that is what they provoke
            with contextlib.suppress(OSError):
                self.server.behaviour(self)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _reply(
    handler: _Handler, status: int, body: bytes, headers: dict[str, str] | None = None
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    for name, value in (headers or {"Content-Length": str(len(body))}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def _success_body() -> bytes:
    part = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}}
    candidate = {
        "content": {"role": "model", "parts": [{"text": "ok"}, part]},
        "finishReason": "STOP",
    }
    return json.dumps({"candidates": [candidate], "responseId": "r1"}).encode()


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.stop.set()
    srv.shutdown()
    srv.server_close()


def _client(server: _Server, timeout_s: float = 5.0) -> HttpGeminiClient:
    host, port = server.server_address[:2]
    return HttpGeminiClient(f"http://{host!s}:{port}", SecretStr(KEY), timeout_s=timeout_s)


def _generate(client: HttpGeminiClient, body: bytes = b'{"contents": []}') -> ApiResponse:
    try:
        return client.generate(MODEL, BytesBody(body))
    finally:
        client.close()


def _timed_failure(client: HttpGeminiClient) -> tuple[EditQueueError, float]:
    start = time.monotonic()
    with pytest.raises(EditQueueError) as caught:
        _generate(client)
    return caught.value, time.monotonic() - start


# --- behaviours -------------------------------------------------------------------------------


def _chunked(handler: _Handler) -> None:
    body = _success_body()
    _reply(handler, 200, b"", {"Transfer-Encoding": "chunked"})
    for start in range(0, len(body), 1000):
        piece = body[start : start + 1000]
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
    handler.wfile.write(b"0\r\n\r\n")


def _gzipped(handler: _Handler) -> None:
    body = gzip.compress(_success_body())
    _reply(handler, 200, body, {"Content-Length": str(len(body)), "Content-Encoding": "gzip"})


def _hang(handler: _Handler) -> None:
    handler.server.stop.wait(10)


def _drip(handler: _Handler) -> None:
    _reply(handler, 200, b"", {"Content-Length": "1000"})
    for _ in range(1000):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        if handler.server.stop.wait(0.2):
            return


def _late_headers_then_stall(handler: _Handler) -> None:
    handler.server.stop.wait(0.6)
    _reply(handler, 200, b'{"candi', {"Content-Length": "1000"})
    handler.wfile.flush()
    handler.server.stop.wait(10)


def _cut_short(handler: _Handler) -> None:
    _reply(handler, 200, b'{"candidates": [', {"Content-Length": "1000"})
    handler.wfile.flush()
    handler.connection.shutdown(socket.SHUT_RDWR)
    handler.close_connection = True


def _echo_key(handler: _Handler) -> None:
    error = {"code": 400, "status": "INVALID_ARGUMENT", "message": f"API key {KEY} not valid"}
    _reply(handler, 400, json.dumps({"error": error}).encode())


# --- success and request shape -----------------------------------------------------------------


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(lambda h: _reply(h, 200, _success_body()), id="content-length"),
        pytest.param(_chunked, id="chunked"),
        pytest.param(_gzipped, id="gzip"),
    ],
)
def test_a_200_returns_the_parsed_answer_with_its_latency(
    server: _Server, behaviour: Behaviour
) -> None:
    server.behaviour = behaviour
    resp = _generate(_client(server))
    assert resp.parts[0] == ReturnedPart(text="ok")
    assert resp.parts[1].image == PNG
    assert resp.response_id == "r1"
    assert 0 < resp.latency_s < 5


def _slow_success(handler: _Handler) -> None:
    handler.server.stop.wait(0.3)  # long enough for every thread's call to overlap
    _reply(handler, 200, _success_body())


@pytest.mark.parametrize("pool", ["own", "requests-default"])
def test_one_client_shared_by_many_threads_never_fails_a_completed_call(
    server: _Server, pool: str
) -> None:
    # More threads than requests' default pool (10): surplus connections are closed when the
    # body is complete, and reading on must not touch their sockets (it raised EBADF).
    server.behaviour = _slow_success
    host, port = server.server_address[:2]
    session = requests.Session() if pool == "requests-default" else None
    client = HttpGeminiClient(f"http://{host!s}:{port}", SecretStr(KEY), session=session)
    errors: list[Exception] = []

    def call() -> None:
        for _ in range(2):
            try:
                client.generate(MODEL, BytesBody(b'{"contents": []}'))
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()

    assert errors == []
    assert len(server.received) == 48
    if pool == "own":  # every second call reused a kept connection
        assert len(server.clients) <= 24


def test_the_key_is_sent_as_a_header_and_never_in_the_url(server: _Server) -> None:
    _generate(_client(server))
    [request] = server.received
    assert request.path == f"/v1beta/models/{MODEL}:generateContent"
    assert KEY not in request.path and "key=" not in request.path
    assert request.headers["x-goog-api-key"] == KEY
    assert request.headers["Content-Type"] == "application/json"


def test_no_key_header_is_sent_without_a_key(server: _Server) -> None:
    host, port = server.server_address[:2]
    _generate(HttpGeminiClient(f"http://{host!s}:{port}/", None))
    assert "x-goog-api-key" not in {name.lower() for name in server.received[0].headers}


class _ChunkedBody:
    """A body produced in many small pieces, as the streaming request builder does."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.content_length = sum(len(piece) for piece in pieces)

    def chunks(self) -> Iterator[bytes]:
        yield from self.pieces


def test_the_request_body_is_streamed_with_its_exact_content_length(server: _Server) -> None:
    pieces = [b'{"contents": "', *(bytes([65 + i % 26]) * 7919 for i in range(40)), b'"}']
    body = _ChunkedBody(pieces)
    client = _client(server)
    try:
        client.generate(MODEL, body)
    finally:
        client.close()
    [request] = server.received
    assert request.headers["Content-Length"] == str(body.content_length)
    assert "Transfer-Encoding" not in request.headers
    assert request.body == b"".join(pieces)


def test_a_body_shorter_than_it_declares_fails_instead_of_hanging(server: _Server) -> None:
    body = _ChunkedBody([b"{}"])
    body.content_length = 100
    client = _client(server, timeout_s=3)
    start = time.monotonic()
    with pytest.raises(PermanentError, match="declared 100"):
        client.generate(MODEL, body)
    client.close()
    assert time.monotonic() - start < 1


def test_a_body_longer_than_it_declares_fails_before_sending_the_excess(server: _Server) -> None:
    body = _ChunkedBody([b"{}", b"extra"])
    body.content_length = 2
    client = _client(server)
    with pytest.raises(PermanentError, match="declared 2"):
        client.generate(MODEL, body)
    client.close()


# --- HTTP errors -------------------------------------------------------------------------------


def test_a_503_raises_server_error(server: _Server) -> None:
    error = {"code": 503, "status": "UNAVAILABLE", "message": "The model is overloaded."}
    server.behaviour = lambda h: _reply(h, 503, json.dumps({"error": error}).encode())
    with pytest.raises(ServerError) as caught:
        _generate(_client(server))
    assert caught.value.status == 503
    assert caught.value.message == "HTTP 503 UNAVAILABLE: The model is overloaded."


def test_a_429_raises_rate_limited_with_the_retry_delay(server: _Server) -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "45.837906927s"}]
    error = {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota", "details": details}
    server.behaviour = lambda h: _reply(h, 429, json.dumps({"error": error}).encode())
    with pytest.raises(RateLimited) as caught:
        _generate(_client(server))
    assert caught.value.retry_after_s == pytest.approx(45.837906927)
    assert caught.value.status == 429


def test_a_redirect_is_not_followed(server: _Server) -> None:
    server.behaviour = lambda h: _reply(
        h, 302, b"", {"Location": "/elsewhere", "Content-Length": "0"}
    )
    with pytest.raises(PermanentError, match="HTTP 302"):
        _generate(_client(server))
    assert len(server.received) == 1


def test_a_truncated_json_200_raises_malformed_response(server: _Server) -> None:
    server.behaviour = lambda h: _reply(h, 200, _success_body()[:-30])
    with pytest.raises(MalformedResponse):
        _generate(_client(server))


def test_a_200_without_an_image_is_returned_for_check_response_to_judge(server: _Server) -> None:
    # The client parses; deciding that a text-only answer is NoImage is check_response's job.
    text_only = {"candidates": [{"content": {"parts": [{"text": "no"}]}, "finishReason": "STOP"}]}
    server.behaviour = lambda h: _reply(h, 200, json.dumps(text_only).encode())
    resp = _generate(_client(server))
    assert resp.parts == [ReturnedPart(text="no")]
    assert not issubclass(NoImage, MalformedResponse)


# --- the total deadline and the network --------------------------------------------------------


def test_a_server_that_never_answers_times_out_at_the_deadline(server: _Server) -> None:
    server.behaviour = _hang
    error, elapsed = _timed_failure(_client(server, timeout_s=1))
    assert isinstance(error, Timeout)
    assert 0.9 <= elapsed < 1.5


def test_a_body_dripped_one_byte_at_a_time_times_out_at_the_total_deadline(server: _Server) -> None:
    # Every read succeeds within 0.2 s, so a per-read timeout alone would wait 200 s for 1000 bytes.
    server.behaviour = _drip
    error, elapsed = _timed_failure(_client(server, timeout_s=1))
    assert isinstance(error, Timeout)
    assert 0.9 <= elapsed < 1.5


def test_a_body_stalling_after_late_headers_times_out_at_the_deadline_not_a_read_later(
    server: _Server,
) -> None:
    # Headers at 0.6 s; a read timeout fixed at the start (1 s) would fire at 1.6 s.
    server.behaviour = _late_headers_then_stall
    error, elapsed = _timed_failure(_client(server, timeout_s=1))
    assert isinstance(error, Timeout)
    assert 0.9 <= elapsed < 1.35


class _SlowBody(_ChunkedBody):
    """A body whose producer takes 0.3 s per piece, as a slow blob cache would."""

    def chunks(self) -> Iterator[bytes]:
        for piece in self.pieces:
            time.sleep(0.3)
            yield piece


def test_a_request_body_produced_past_the_deadline_times_out(server: _Server) -> None:
    client = _client(server, timeout_s=1)
    start = time.monotonic()
    with pytest.raises(Timeout, match="sending the request"):
        client.generate(MODEL, _SlowBody([b"x"] * 10))
    client.close()
    assert time.monotonic() - start < 1.5
    assert server.received == [] or len(server.received[0].body) < 10


def test_a_connection_cut_mid_body_raises_connection_failed(server: _Server) -> None:
    server.behaviour = _cut_short
    error, _ = _timed_failure(_client(server))
    assert isinstance(error, ConnectionFailed)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_refused_connection_raises_connection_failed() -> None:
    client = HttpGeminiClient(f"http://127.0.0.1:{_free_port()}", SecretStr(KEY), timeout_s=2)
    error, elapsed = _timed_failure(client)
    assert isinstance(error, ConnectionFailed)
    assert isinstance(error.__cause__, Exception)  # raised from the requests exception
    assert elapsed < 1


def test_a_bad_base_url_is_a_permanent_error() -> None:
    error, _ = _timed_failure(HttpGeminiClient("localhost:1", SecretStr(KEY)))
    assert type(error) is PermanentError
    assert "EDITQUEUE_API_BASE_URL" in error.message


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(_echo_key, id="API message echoing the key"),
        pytest.param(_hang, id="timeout"),
        pytest.param(_cut_short, id="connection cut"),
        pytest.param(lambda h: _reply(h, 200, b"<html>" + KEY.encode()), id="malformed 200"),
    ],
)
def test_the_key_never_appears_in_a_raised_error(server: _Server, behaviour: Behaviour) -> None:
    server.behaviour = behaviour
    error, _ = _timed_failure(_client(server, timeout_s=1))
    for text in (str(error), error.message, repr(error.args), str(error.__cause__)):
        assert KEY not in text


def test_the_key_never_appears_when_the_connection_is_refused() -> None:
    client = HttpGeminiClient(f"http://127.0.0.1:{_free_port()}", SecretStr(KEY))
    error, _ = _timed_failure(client)
    assert KEY not in str(error)
    assert KEY not in str(error.__cause__)


def test_url_for_drops_a_models_prefix_and_escapes_the_id() -> None:
    client = HttpGeminiClient("https://api.example/", None)
    assert client.url_for("models/gemini-3-pro-image") == (
        "https://api.example/v1beta/models/gemini-3-pro-image:generateContent"
    )
    assert (
        client.url_for("a/../b?x")
        == "https://api.example/v1beta/models/a%2F..%2Fb%3Fx:generateContent"
    )


# --- the in-memory twin ------------------------------------------------------------------------


@dataclass
class _Echo:
    seen: list[tuple[str, bytes]] = field(default_factory=list)

    def __call__(self, model: str, body: bytes) -> ApiResponse:
        self.seen.append((model, body))
        return ApiResponse(parts=[ReturnedPart(text=body.decode())])


def test_the_fake_client_plays_its_script_and_records_each_request() -> None:
    first = ApiResponse(parts=[ReturnedPart(image=PNG)], finish_reason="STOP")
    echo = _Echo()
    fake = FakeGeminiClient([first, ServerError("HTTP 503", status=503), echo])
    assert fake.generate(MODEL, BytesBody(b'{"n": 1}')) is first
    with pytest.raises(ServerError):
        fake.generate(MODEL, BytesBody(b'{"n": 2}'))
    assert fake.generate("other", _ChunkedBody([b'{"n"', b": 3}"])).parts[0].text == '{"n": 3}'
    assert fake.calls == 3
    assert fake.bodies == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}']
    assert fake.models == [MODEL, MODEL, "other"]
    assert fake.body_json() == {"n": 3}
    assert echo.seen == [("other", b'{"n": 3}')]


def test_the_fake_client_refuses_a_call_beyond_its_script() -> None:
    fake = FakeGeminiClient([])
    with pytest.raises(AssertionError, match="only 0 scripted"):
        fake.generate(MODEL, BytesBody(b"{}"))


def test_the_fake_client_refuses_a_body_whose_length_is_wrong() -> None:
    body = _ChunkedBody([b"{}"])
    body.content_length = 3
    with pytest.raises(AssertionError, match="declared 3"):
        FakeGeminiClient([ApiResponse(parts=[])]).generate(MODEL, body)
