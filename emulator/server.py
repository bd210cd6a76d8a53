"""The HTTP edge: routes, key extraction, body reading and the misbehaving reply modes."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from emulator.app import JSON_TYPE, EmulatorApp, Reply, error_reply, json_bytes
from emulator.batch_api import Call, handles
from emulator.config import EmulatorConfig
from emulator.errors import ApiError, JsonDict, not_found

_GENERATE_RE = re.compile(r"^/(v1|v1beta)/models/([^/:]+):generateContent$")
# The SDK (google-genai 3.x) calls /v1/interactions; Google's docs show /v1beta: both are served.
_INTERACTIONS_RE = re.compile(r"^/(v1|v1beta)/interactions(?:/([^/:]+)(/cancel|:cancel)?)?$")
_DISCARD_CHUNK_BYTES = 1 << 20
STOP_POLL_S = 0.05


class EmulatorServer(ThreadingHTTPServer):
    """A threading HTTP server carrying the emulator app."""

    daemon_threads = True  # a hung handler must never keep the process alive
    allow_reuse_address = True
    # socketserver's default backlog of 5 resets connections when a fleet of 50+ slots (or a
    # benchmark's thread pool) connects at once.
    request_queue_size = 256

    def __init__(self, config: EmulatorConfig) -> None:
        self.app = EmulatorApp(config)
        super().__init__((config.host, config.port), _Handler)

    @property
    def url(self) -> str:
        """Base URL such as http://127.0.0.1:PORT (no trailing slash)."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: benchmarks make hundreds of calls
    server_version = "editqueue-emulator"
    sys_version = ""

    @property
    def app(self) -> EmulatorApp:
        """The app of the server this handler serves."""
        assert isinstance(self.server, EmulatorServer)
        return self.server.app

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the default access log would print `?key=` query strings."""

    def do_GET(self) -> None:
        """Health, identity, statistics, and the Files and Batch APIs' reads."""
        path = urlsplit(self.path).path
        if _INTERACTIONS_RE.match(path):
            self._interaction("GET")
        elif handles(path):
            self._batch_api("GET")
        elif path == "/healthz":
            self._send_json(200, {"status": "ok"})
        elif path == "/emulator/info":
            self._send_json(200, self.app.identity())
        elif path == "/emulator/stats":
            self._send_json(200, {**self.app.stats.snapshot(), "batch": self.app.batch_stats()})
        else:
            self._send(error_reply(not_found(path), "not_found"))

    def do_DELETE(self) -> None:
        """Deleting files, batch jobs and interactions."""
        if _INTERACTIONS_RE.match(urlsplit(self.path).path):
            self._interaction("DELETE")
        else:
            self._batch_api("DELETE")

    def _batch_api(self, method: str) -> None:
        url = urlsplit(self.path)
        length = self._content_length() or 0
        body = self.rfile.read(length) if length else b""
        query = parse_qs(url.query)
        # An upload URL carries its own upload_id (the SDK sends no key with the chunks).
        key = self.headers.get("x-goog-api-key") or query.get("key", [""])[0]
        denied = None if "upload_id" in query else self.app.check_key(key)
        if denied is not None:
            self._send(denied)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        base = f"http://{self.headers.get('Host') or '127.0.0.1'}"
        answer = self.app.batch_api.handle(Call(method, url.path, query, headers, body, base))
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)

    def do_POST(self) -> None:
        """generateContent under /v1beta and /v1, the Files and Batch APIs, the admin reset."""
        url = urlsplit(self.path)
        if handles(url.path):
            self._batch_api("POST")
            return
        if _INTERACTIONS_RE.match(url.path):
            self._interaction("POST")
            return
        if url.path == "/emulator/reset":
            self._discard(self._content_length())
            self.app.reset()
            self._send_json(200, {"status": "reset"})
            return
        match = _GENERATE_RE.match(url.path)
        if match is None:
            self._discard(self._content_length())
            self._send(error_reply(not_found(url.path), "not_found"))
            return
        key = self.headers.get("x-goog-api-key") or parse_qs(url.query).get("key", [""])[0]
        self._generate(match.group(2), key, match.group(1))

    def _key(self) -> str:
        return (
            self.headers.get("x-goog-api-key")
            or parse_qs(urlsplit(self.path).query).get("key", [""])[0]
        )

    def _interaction(self, method: str) -> None:
        match = _INTERACTIONS_RE.match(urlsplit(self.path).path)
        assert match is not None
        version, interaction_id, cancel = match.groups()
        if method == "POST" and interaction_id is None:
            self._generate("", self._key(), version, route="interactions")
            return
        self._discard(self._content_length())
        reply = self.app.check_key(self._key()) or self.app.interaction_call(
            method, interaction_id or "", bool(cancel), self._key()
        )
        self._send(reply)

    def _generate(self, model: str, key: str, api_version: str, route: str = "") -> None:
        record = self.app.stats.begin(model, api_version)
        record.route = route or record.route
        record.request_bytes = self._content_length() or 0
        try:
            reply = self._decide(model, key, route)
        except Exception as exc:  # an emulator bug must show up as a 500, not a silent hang
            message = f"Emulator internal error: {type(exc).__name__}: {exc}"
            reply = error_reply(ApiError(500, "INTERNAL", message), "emulator_error")
            self.close_connection = True
        if reply.delay_s > 0:
            self.app.stopping.wait(reply.delay_s)
        if reply.mode == "normal":
            # Record before sending, so a client that has its answer also sees it in the stats.
            self.app.stats.finish(record, reply.outcome, reply.status, reply.generation, reply.tier)
            record.images_in, record.model = reply.images_in, reply.model or record.model
            self._perform(reply)
            return
        status = self._perform(reply)
        self.app.stats.finish(record, reply.outcome, status, reply.generation, reply.tier)
        record.images_in, record.model = reply.images_in, reply.model or record.model

    def _decide(self, model: str, key: str, route: str = "") -> Reply:
        length = self._content_length()
        if length is None:
            self.close_connection = True
            return error_reply(ApiError(411, "INVALID_ARGUMENT", "Length Required"), "invalid")
        if length > self.app.config.max_request_bytes:
            self._discard(length)
            return self.app.too_large()
        body = self.rfile.read(length)
        denied = self.app.check_key(key)
        if denied is not None:
            return denied
        if route == "interactions":
            return self.app.create_interaction(body, key)
        return self.app.generate(model, body)

    def _content_length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None if self.headers.get("Transfer-Encoding") else 0
        return int(raw) if raw.isdigit() else None

    def _discard(self, length: int | None) -> None:
        remaining = length or 0
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, _DISCARD_CHUNK_BYTES))
            if not chunk:
                break
            remaining -= len(chunk)

    def _perform(self, reply: Reply) -> int:
        """Send the reply in its mode; the HTTP status sent (0 when none was)."""
        try:
            if reply.mode == "hang":
                self.app.stopping.wait(self.app.config.hang_s)
                self.close_connection = True
                return 0
            if reply.mode == "drip":
                self._drip(reply)
            elif reply.mode == "truncated":
                self._truncated(reply)
            else:
                self._send(reply)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up; nothing more to say
        return reply.status

    def _headers(self, status: int, content_type: str, length: int | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is None:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, reply: Reply) -> None:
        self._headers(reply.status, reply.content_type, len(reply.body))
        self.wfile.write(reply.body)

    def _send_json(self, status: int, body: dict[str, object]) -> None:
        self._send(Reply(status, json_bytes(body), "admin", JSON_TYPE))

    def _truncated(self, reply: Reply) -> None:
        # No Content-Length: the client reads to EOF and is left holding half a JSON document.
        self._headers(reply.status, reply.content_type, None)
        self.wfile.write(reply.body[: len(reply.body) // 2])

    def _drip(self, reply: Reply) -> None:
        """Headers at once, then one byte per interval until done, the hang cap, or stop."""
        self._headers(reply.status, reply.content_type, len(reply.body))
        self.close_connection = True
        deadline = time.monotonic() + self.app.config.hang_s
        for offset in range(len(reply.body)):
            self.wfile.write(reply.body[offset : offset + 1])
            self.wfile.flush()
            if time.monotonic() >= deadline or self.app.stopping.wait(
                self.app.config.drip_interval_s
            ):
                return


class RunningEmulator:
    """An emulator serving on a background thread; `.url`, `.stop()`, or use `with`."""

    def __init__(self, server: EmulatorServer) -> None:
        self._server = server
        # A short poll interval makes stop() quick; tests start and stop many emulators.
        self._thread = threading.Thread(
            target=server.serve_forever, args=(STOP_POLL_S,), name="emulator", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL such as http://127.0.0.1:PORT (no trailing slash)."""
        return self._server.url

    @property
    def app(self) -> EmulatorApp:
        """The app behind the server (stats, signer), for in-process tests."""
        return self._server.app

    def stats(self) -> JsonDict:
        """The same snapshot `GET /emulator/stats` returns."""
        return self._server.app.stats.snapshot()

    def reset(self) -> None:
        """The same as `POST /emulator/reset`."""
        self._server.app.reset()

    def stop(self) -> None:
        """Stop serving, wake hung handlers and close the socket."""
        self._server.app.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_emulator(config: EmulatorConfig | None = None) -> RunningEmulator:
    """Start an emulator on a background thread and return once it accepts connections."""
    return RunningEmulator(EmulatorServer(config or EmulatorConfig()))


def serve_forever(config: EmulatorConfig, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve in the foreground until interrupted; `on_ready(url)` runs once the port is bound."""
    server = EmulatorServer(config)
    if on_ready is not None:
        on_ready(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.app.stopping.set()
        server.server_close()
