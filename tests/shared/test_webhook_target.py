"""Webhook destinations: internal addresses refused in every spelling; no lookup leaves the host.

Every hostname here goes through a stub resolver; literal addresses are parsed, never contacted.
"""

from __future__ import annotations

import ipaddress

import pytest

from shared.config import load_settings
from shared.errors import InvalidSpec, WebhookRefused
from shared.webhooks import allowed_networks, check_destination

STUB = {
    "hooks.example": ["203.0.113.7"],
    "metadata.google.internal": ["169.254.169.254"],
    "rebinding.example": ["203.0.113.9", "127.0.0.1"],  # one bad answer refuses the host
    "v6.example": ["2001:db8::1", "fd12::1"],
}
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


def stub(host: str, port: int) -> list[str]:
    if host not in STUB:
        raise OSError("unknown host (stub)")
    return STUB[host]


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://127.0.0.1:6379/", "loopback"),
        ("http://2130706433/", "loopback"),  # decimal
        ("http://0x7f000001/", "loopback"),  # hex
        ("http://0x7f.1/", "loopback"),  # hex, short
        ("http://127.1/", "loopback"),  # short
        ("http://0177.0.0.1/", "loopback"),  # octal
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback (as an IPv6 form of 127.0.0.1)"),
        ("http://[::ffff:7f00:1]/", "loopback (as an IPv6 form of 127.0.0.1)"),
        ("http://[2002:7f00:1::]/", "loopback (as an IPv6 form of 127.0.0.1)"),  # 6to4
        ("http://user:pw@127.0.0.1/", "loopback"),  # userinfo
        ("http://hooks.example@127.0.0.1/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64
        ("http://[fe80::1]/", "link-local"),
        ("http://metadata.google.internal/", "link-local"),
        ("http://10.0.0.1/", "private"),
        ("http://172.16.5.4/", "private"),
        ("https://192.168.1.1/", "private"),
        ("http://[fd00::1]/", "private"),
        ("http://v6.example/", "private"),
        ("http://100.64.0.1/", "CGNAT"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://255.255.255.255/", "reserved"),
        ("http://rebinding.example/", "loopback"),
        ("http://nowhere.example/", "does not resolve"),
    ],
)
def test_an_internal_destination_is_refused_naming_the_rule(url: str, rule: str) -> None:
    with pytest.raises(WebhookRefused) as caught:
        check_destination(url, (), stub)

    assert rule in caught.value.message


def test_a_public_host_passes_and_is_pinned_to_the_checked_address() -> None:
    dest = check_destination("https://hooks.example:8443/eq?x=1", (), stub)

    assert (dest.address, dest.host, dest.port, dest.target) == (
        "203.0.113.7",
        "hooks.example",
        8443,
        "/eq?x=1",
    )
    assert dest.host_header == "hooks.example:8443"


def test_the_allow_setting_lets_loopback_through_and_nothing_else() -> None:
    settings = load_settings(webhook_allow_cidrs="127.0.0.0/8, ::1/128")
    allow = allowed_networks(settings)

    assert check_destination("http://127.0.0.1:9/", allow, stub).address == "127.0.0.1"
    assert check_destination("http://[::ffff:127.0.0.1]/", allow, stub).port == 80
    with pytest.raises(WebhookRefused, match="private"):
        check_destination("http://10.0.0.1/", allow, stub)


def test_a_malformed_allow_setting_is_refused_naming_it() -> None:
    with pytest.raises(InvalidSpec, match="EDITQUEUE_WEBHOOK_ALLOW_CIDRS"):
        allowed_networks(load_settings(webhook_allow_cidrs="127.0.0.0/33"))
