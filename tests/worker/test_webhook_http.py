"""The webhook POST connects to the checked address: loopback receivers and a stub resolver only."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.errors import WebhookRefused
from worker.webhook_http import post_webhook

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


class Receiver(ThreadingHTTPServer):
    """A loopback HTTP server that answers `status` and keeps each request's Host and path."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.got: list[tuple[str, str]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server = self.server
        assert isinstance(server, Receiver)
        self.rfile.read(int(self.headers.get("content-length", "0")))
        server.got.append((self.headers.get("host", ""), self.path))
        self.send_response(server.status)
        if server.status == 302:
            self.send_header("location", f"http://127.0.0.1:{server.port}/elsewhere")
        self.send_header("content-length", "0")
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def resolver_to(address: str) -> object:
    def resolve(host: str, port: int) -> list[str]:
        assert host == "hooks.test"
        return [address]

    return resolve


def post(url: str, allow: tuple[object, ...], address: str = "127.0.0.1") -> int:
    return post_webhook(
        url, b"{}", {"content-type": "application/json"}, allow=allow, resolver=resolver_to(address)
    )  # type: ignore[arg-type]


def test_a_host_resolving_to_loopback_is_refused_at_delivery_and_nothing_is_sent(
    receiver: Receiver,
) -> None:
    with pytest.raises(WebhookRefused, match="loopback"):
        post(f"http://hooks.test:{receiver.port}/hook", ())

    assert receiver.got == []


def test_the_post_goes_to_the_checked_address_with_the_urls_host(receiver: Receiver) -> None:
    status = post(f"http://hooks.test:{receiver.port}/hook?x=1", LOOPBACK)

    assert status == 204
    assert receiver.got == [(f"hooks.test:{receiver.port}", "/hook?x=1")]


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    receiver.status = 302

    status = post(f"http://hooks.test:{receiver.port}/hook", LOOPBACK)

    assert status == 302
    assert [path for _, path in receiver.got] == ["/hook"]  # /elsewhere never asked for


def test_proxy_environment_variables_are_ignored(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = Receiver()
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)

        assert post(f"http://hooks.test:{receiver.port}/hook", LOOPBACK) == 204
        assert proxy.got == [] and len(receiver.got) == 1
    finally:
        proxy.shutdown()
        proxy.server_close()
