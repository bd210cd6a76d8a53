"""The HTTP API over real HTTP: `editqueue api` and `editqueue worker` subprocesses on real Redis,
moto's S3 server and the emulator; a local webhook receiver; schemathesis; the gallery in Chromium.

One API server and one worker serve the whole module (starting them is most of the cost).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.conftest import need
from tests.integration.conftest import BUCKET
from tests.integration.services import BIN, Proc, Stack, free_port, spawn, wait_until
from tests.integration.test_spine import lineage

pytestmark = pytest.mark.integration

ACME = "acme-integration-token-5d1f0c"
GLOBEX = "globex-integration-token-77a2e9"
WEBHOOK_KEY = hashlib.sha256(b"editqueue integration webhook key").digest()
WEBHOOK_SECRET = "whsec_" + base64.b64encode(WEBHOOK_KEY).decode()
TOLERANCE_S = 300
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


# --- a webhook receiver that checks signatures on its own (not with editqueue's code) -----------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool


@dataclass
class Receiver:
    url: str
    got: list[Received] = field(default_factory=list)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in list(self.got)]


def standard_webhooks_ok(headers: dict[str, str], body: bytes) -> bool:
    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "0")
    if abs(time.time() - int(timestamp)) > TOLERANCE_S:
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(WEBHOOK_KEY, signed, hashlib.sha256).digest()).decode()
    offered = [s.partition(",")[2] for s in headers.get("webhook-signature", "").split()]
    return any(hmac.compare_digest(expected, s) for s in offered)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    port = free_port()
    found = Receiver(f"http://127.0.0.1:{port}/hooks/editqueue")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            found.got.append(Received(headers, body, standard_webhooks_ok(headers, body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()


# --- the stack: one API server and one worker for the module ----------------------------------


@dataclass
class Api:
    url: str
    stack: Stack
    proc: Proc

    def post(self, path: str, token: str | None = ACME, **kwargs: Any) -> requests.Response:
        headers = {**(auth(token) if token else {}), **kwargs.pop("headers", {})}
        return requests.post(f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def get(self, path: str, token: str = ACME, **kwargs: Any) -> requests.Response:
        return requests.get(f"{self.url}{path}", headers=auth(token), timeout=30, **kwargs)

    def wait_done(self, sid: str, timeout_s: float = 60) -> dict[str, Any]:
        doc: dict[str, Any] = {}

        def done() -> bool:
            doc.update(self.get(f"/v1/sessions/{sid}").json())
            return doc["state"] in ("completed", "failed", "cancelled")

        wait_until(done, timeout_s, f"session {sid} finished")
        return doc


def start_api(stack: Stack) -> Api:
    port = free_port()
    log = stack.workdir / f"api-{port}.log"
    proc = spawn([str(BIN / "editqueue"), "api", "--port", str(port)], log, env=stack.env())
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{url}/healthz", timeout=1).ok, 30, "editqueue api")
    except TimeoutError:
        proc.kill()
        raise AssertionError(f"editqueue api did not start:\n{proc.output()}") from None
    return Api(url, stack, proc)


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory,
    redis_port: int,
    s3_url: str,
    emulator_url: str,
) -> Iterator[Api]:
    redis.Redis(port=redis_port).flushall()
    stack = Stack(tmp_path_factory.mktemp("http-api"), redis_port, s3_url, emulator_url, BUCKET)
    stack.extra_env.update(
        EDITQUEUE_API_TOKENS=f"{ACME}=acme,{GLOBEX}=globex",
        EDITQUEUE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        # The receiver listens on loopback, which webhooks may reach only when allowed.
        EDITQUEUE_WEBHOOK_ALLOW_CIDRS="127.0.0.0/8",
    )
    stack.start_worker()
    server = start_api(stack)
    yield server
    server.proc.kill()
    stack.stop()
    log = server.proc.output()
    assert ACME not in log and GLOBEX not in log and "test-key-do-not-log" not in log


def spec(*prompts: str, **fields: Any) -> dict[str, Any]:
    return {
        "image_size": "1K",
        "aspect_ratio": "16:9",
        "turns": [{"prompt": p} for p in prompts],
    } | fields


# --- the Done-when list ----------------------------------------------------------------------


def test_creating_a_session_without_a_token_is_401(api: Api) -> None:
    anonymous = api.post("/v1/sessions", token=None, json=spec("a room"))
    wrong = api.post("/v1/sessions", token="not-a-real-token-000000", json=spec("a room"))

    assert (anonymous.status_code, wrong.status_code) == (401, 401)
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert api.get("/v1/sessions").json()["sessions"] == []


def test_same_key_and_body_return_the_same_session_and_another_body_is_409(api: Api) -> None:
    key = {"Idempotency-Key": f"order-{uuid.uuid4().hex}"}
    body = spec("a small kitchen")

    first = api.post("/v1/sessions", json=body, headers=key)
    again = api.post("/v1/sessions", json=body, headers=key)
    other = api.post("/v1/sessions", json=spec("a large kitchen"), headers=key)

    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 409)
    assert again.json()["session_id"] == first.json()["session_id"]
    assert again.headers["idempotent-replayed"] == "true"
    listed = [s["session_id"] for s in api.get("/v1/sessions").json()["sessions"]]
    assert listed.count(first.json()["session_id"]) == 1


def test_another_tenant_gets_404(api: Api) -> None:
    sid = api.post("/v1/sessions", json=spec("a hallway")).json()["session_id"]

    theirs = api.get(f"/v1/sessions/{sid}", token=GLOBEX)
    append = api.post(f"/v1/sessions/{sid}/turns", token=GLOBEX, json={"prompt": "x"})
    cancel = api.post(f"/v1/sessions/{sid}/cancel", token=GLOBEX)

    assert (theirs.status_code, append.status_code, cancel.status_code) == (404, 404, 404)
    assert api.get(f"/v1/sessions/{sid}").status_code == 200
    assert sid not in [s["session_id"] for s in api.get("/v1/sessions", GLOBEX).json()["sessions"]]


def test_a_turn_appended_over_http_runs_after_its_predecessor_with_signed_webhooks(
    api: Api, receiver: Receiver
) -> None:
    created = api.post(
        "/v1/sessions", json=spec("a living room", "paint it #8FAF8A", webhook_url=receiver.url)
    )
    sid = created.json()["session_id"]
    added = api.post(f"/v1/sessions/{sid}/turns", json={"prompt": "add a walnut bookshelf"})

    doc = api.wait_done(sid)

    assert (created.status_code, added.status_code, added.json()["index"]) == (201, 201, 3)
    assert doc["state"] == "completed", doc
    images = [requests.get(t["image_url"], headers=auth(ACME), timeout=30) for t in doc["turns"]]
    assert [i.history[0].status_code for i in images] == [307, 307, 307]  # presigned S3 URLs
    third, second = images[2].content, images[1].content
    assert lineage(third) == (3, hashlib.sha256(second).hexdigest())  # ran after turn 2

    def mine() -> list[dict[str, Any]]:
        return [e for e in receiver.events() if e["data"]["session_id"] == sid]

    wait_until(lambda: any(e["type"] == "session.completed" for e in mine()), 30, "webhooks")
    time.sleep(1.0)  # anything sent twice would arrive by now
    assert all(r.signature_ok for r in receiver.got)
    succeeded = sorted(e["data"]["turn"] for e in mine() if e["type"] == "turn.succeeded")
    completed = {e["data"]["event_id"] for e in mine() if e["type"] == "session.completed"}
    assert succeeded == [1, 2, 3]
    assert len(completed) == 1
    ids = [
        r.headers["webhook-id"]
        for r in receiver.got
        if json.loads(r.body)["data"]["session_id"] == sid
    ]
    assert len(ids) == len(mine()) == 4, ids


class ImagesAndPrompts(HTMLParser):
    """Collects each turn's <img> attributes and prompt text from a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.images: dict[int, dict[str, str | None]] = {}
        self.prompts: list[str] = []
        self._in_prompt = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "img" and found.get("data-turn"):
            self.images[int(found["data-turn"] or 0)] = found
        self._in_prompt = tag == "p" and found.get("class") == "prompt"

    def handle_data(self, data: str) -> None:
        if self._in_prompt:
            self.prompts.append(data)
            self._in_prompt = False


def chromium(*args: str, profile: Path) -> str:
    command = ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_gallery_shows_every_turns_image_and_prompt_in_chromium(
    api: Api, tmp_path: Path
) -> None:
    need(
        shutil.which("chromium") is not None, "chromium is not installed (apt-get install chromium)"
    )
    prompts = ["a bright studio flat", "add a green sofa", "evening light"]
    sid = api.post("/v1/sessions", json=spec(*prompts)).json()["session_id"]
    doc = api.wait_done(sid)
    assert doc["state"] == "completed"
    link = doc["urls"]["gallery"]

    dom = chromium("--virtual-time-budget=10000", "--dump-dom", link, profile=tmp_path / "p1")
    shot = tmp_path / "gallery.png"
    chromium(
        f"--screenshot={shot}",
        "--window-size=1400,900",
        "--virtual-time-budget=10000",
        link,
        profile=tmp_path / "p2",
    )

    page = ImagesAndPrompts()
    page.feed(dom)
    assert sorted(page.images) == [1, 2, 3]
    assert [img.get("data-loaded") for _, img in sorted(page.images.items())] == ["1", "1", "1"]
    assert page.prompts == prompts
    assert shot.stat().st_size > 10_000


# --- schemathesis against /openapi.json ------------------------------------------------------
# A server of its own on the same store prefix (so a real, completed session can be fuzzed too),
# with a broker database nobody consumes and no webhook secret (a fuzzed webhook_url is refused,
# so nothing is ever POSTed to a generated address).


@dataclass
class Fuzz:
    api: Api
    sid: str  # a completed session of tenant acme


@pytest.fixture(scope="module")
def fuzz(api: Api, redis_port: int) -> Iterator[Fuzz]:
    sid = api.post("/v1/sessions", json=spec("a reading nook", "add a lamp")).json()["session_id"]
    assert api.wait_done(sid)["state"] == "completed"
    main = api.stack
    stack = Stack(main.workdir / "fuzz", redis_port, main.s3_url, main.emulator_url, BUCKET)
    stack.prefix = main.prefix
    stack.workdir.mkdir()
    stack.extra_env.update(
        EDITQUEUE_API_TOKENS=f"{ACME}=acme",
        EDITQUEUE_BROKER_URL=f"redis://127.0.0.1:{redis_port}/3",
        EDITQUEUE_API_MAX_BODY_BYTES="200000",
    )
    server = start_api(stack)
    yield Fuzz(server, sid)
    server.proc.kill()


def test_the_gallery_refreshes_itself_when_the_session_changes(fuzz: Fuzz, tmp_path: Path) -> None:
    need(
        shutil.which("chromium") is not None, "chromium is not installed (apt-get install chromium)"
    )
    created = fuzz.api.post("/v1/sessions", json=spec("a quiet study", "add a desk")).json()
    sid, link = created["session_id"], created["gallery_url"]

    def cancel_after_the_first_poll() -> None:  # so the page surely loaded while queued
        polled = f"GET /ui/sessions/{sid}/status"
        wait_until(lambda: polled in fuzz.api.proc.output(), 30, "the page's first poll")
        fuzz.api.post(f"/v1/sessions/{sid}/cancel")

    canceller = threading.Thread(target=cancel_after_the_first_poll)
    canceller.start()
    # Virtual time runs the page's 2 s polls back to back (real time passes only while a fetch
    # is in flight), so the script polls until the cancel lands, then swaps the strip.
    dom = chromium("--virtual-time-budget=50000000", "--dump-dom", link, profile=tmp_path / "p")
    canceller.join()

    assert 'id="gallery" data-state="cancelled"' in dom
    assert dom.count('data-state="cancelled"') == 1 + 2  # the page and both turns


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]
EXAMPLES_PER_STRATEGY = 8


def strategies(operation: Any, sid: str) -> list[Any]:
    """Generated cases, the schema's examples, and cases pinned to a real session."""
    found = [operation.as_strategy(), *operation.get_strategies_from_examples()]
    pinned = {k: v for k, v in (("session_id", sid), ("index", 1)) if f"{{{k}}}" in operation.label}
    if pinned:
        found.append(operation.as_strategy(path_parameters=pinned))
    return found


def fuzz_strategy(label: str, strategy: Any) -> str | None:
    """Run one strategy's examples; the first failure's text, or None."""

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_STRATEGY,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=auth(ACME), checks=CHECKS, timeout=30)

    try:
        run()
    except Exception as exc:  # schemathesis groups check failures; keep its report
        return f"{label}: {exc}"
    return None


def test_the_api_keeps_to_its_openapi_schema(fuzz: Fuzz) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz.api.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    runs = [(op.label, s) for op in operations for s in strategies(op, fuzz.sid)]

    failures = [text for text in (fuzz_strategy(*run) for run in runs) if text]

    assert len(operations) >= 9 and len(runs) >= 2 * len(operations)
    assert failures == [], "\n\n".join(failures)
