"""Webhooks, the pure part: Standard Webhooks signatures, the payload, keys and retry timing.

A delivery is `POST webhook_url` with the headers `webhook-id` (the event's stable id),
`webhook-timestamp` (seconds, fresh per attempt) and `webhook-signature: v1,<base64 HMAC-SHA256
of "{id}.{timestamp}.{body}">`, keyed with the bytes of `EDITQUEUE_WEBHOOK_SECRET=whsec_<base64>`.

Where a webhook may go (`check_destination`): a public address, checked after resolving the host.

A `webhook_url` is a tenant's input that makes workers send requests, so it must not reach inside
the network: loopback (the fleet's own Redis), private ranges, link-local (cloud metadata),
CGNAT, multicast, unspecified and reserved addresses are refused, also when spelled as IPv4-mapped,
-compatible, NAT64 or 6to4 IPv6, or as decimal/hex/short IPv4. Every address the host resolves to
must pass, and the delivery connects to the address that was checked (no second lookup in between).
`EDITQUEUE_WEBHOOK_ALLOW_CIDRS` (e.g. `127.0.0.0/8` for local development) lets chosen networks
through.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import random
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.config import Settings
from shared.errors import InvalidSpec, WebhookRefused
from shared.events import Event
from shared.ids import public_session_id

TASK_DELIVER_WEBHOOK = "editqueue.deliver_webhook"
QUEUE_WEBHOOKS = "editqueue.webhooks"
SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
# Waits after each failed attempt (~7.7 h in all, then give up); the broker only ever sees
# countdowns up to `settings.max_countdown_s`, so longer waits are chained in short hops.
RETRY_DELAYS_S = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0)
JITTER = 0.1
DELIVERY_TIMEOUT_S = 10.0
MAX_SECRET_BYTES = 64
# `evt_{sid}_{turn}_{revision}_{kind}`; a sid stored as `tenant.id` holds the one dot allowed.
EVENT_ID_RE = re.compile(
    r"evt_(?:[A-Za-z0-9_-]{1,200}|[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]{1,64}_\d+_\d+_[a-z_]{1,40})"
)


def parse_secret(value: str) -> bytes:
    """The signing key from `whsec_<base64>`; InvalidSpec when it is not that shape."""
    if not value.startswith(SECRET_PREFIX):
        raise InvalidSpec("EDITQUEUE_WEBHOOK_SECRET must look like whsec_<base64 key>")
    try:
        key = base64.b64decode(value[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSpec("EDITQUEUE_WEBHOOK_SECRET: the part after whsec_ is not base64") from None
    if not 16 <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidSpec("EDITQUEUE_WEBHOOK_SECRET: the key must be 16 to 64 bytes")
    return key


def signing_key(settings: Settings) -> bytes | None:
    """The key of `EDITQUEUE_WEBHOOK_SECRET`; None when unset or empty (webhooks are off)."""
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    return parse_secret(secret) if secret else None


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signed_headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header one delivery attempt sends."""
    return {
        "content-type": "application/json",
        "user-agent": "editqueue-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
    }


def verify(key: bytes, headers: dict[str, str], body: bytes, now: int, tolerance_s: int) -> bool:
    """True when one of the `v1` signatures matches and the timestamp is recent (for receivers)."""
    try:
        timestamp = int(headers["webhook-timestamp"])
        expected = sign(key, headers["webhook-id"], timestamp, body)
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    offered = headers.get("webhook-signature", "").split()
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


def payload(event: Event) -> bytes:
    """The JSON body: `{type, timestamp, data}`, the same bytes on every attempt."""
    # The receiver knows the session by the id its tenant chose, not by `tenant.id`.
    sid = public_session_id(event.session_id)
    data = {"event_id": event.event_id, "session_id": sid, "turn": event.turn}
    document = {
        "type": event.kind.value,
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": {**data, **event.data},
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def valid_event_id(value: str) -> str:
    """Refuse event ids that are not of the shape `make_event` produces."""
    if not EVENT_ID_RE.fullmatch(value):
        raise ValueError(f"event id {value!r} is not an editqueue event id")
    return value


def retry_delay_s(failed_attempts: int, rng: random.Random) -> float | None:
    """How long to wait after `failed_attempts` failures (None: give up), with ±10% jitter."""
    if failed_attempts > len(RETRY_DELAYS_S):
        return None
    base = RETRY_DELAYS_S[failed_attempts - 1]
    return base * (1 + rng.uniform(-JITTER, JITTER))


def hop_s(now: float, due_at: float, max_countdown_s: float) -> float:
    """The next countdown toward `due_at`, never longer than the broker allows."""
    return max(0.0, min(due_at - now, max_countdown_s))


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("loopback", ("127.0.0.0/8", "::1/128")),
    ("private", ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")),
    ("link-local (cloud metadata lives here)", ("169.254.0.0/16", "fe80::/10")),
    ("shared address space (CGNAT)", ("100.64.0.0/10",)),
    ("multicast", ("224.0.0.0/4", "ff00::/8")),
    ("unspecified", ("0.0.0.0/8", "::/128")),
    ("reserved", ("240.0.0.0/4", "192.0.0.0/24", "198.18.0.0/15", "fec0::/10")),
)
RULES: tuple[tuple[str, tuple[Network, ...]], ...] = tuple(
    (name, tuple(ipaddress.ip_network(n) for n in nets)) for name, nets in _RULES
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPAT = ipaddress.ip_network("::/96")
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Destination:
    """A checked webhook target: connect to `address`, say `host` (Host header, TLS name)."""

    scheme: str
    host: str
    port: int
    address: str
    target: str  # path and query

    @property
    def host_is_address(self) -> bool:
        """True when the URL named an address, not a host name (no SNI, no name to verify)."""
        return self.host == self.address or _literal(self.host) is not None

    @property
    def host_header(self) -> str:
        """The Host header the URL implies."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host`."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def allowed_networks(settings: Settings) -> tuple[Network, ...]:
    """The networks of `EDITQUEUE_WEBHOOK_ALLOW_CIDRS` (comma-separated)."""
    try:
        return tuple(
            ipaddress.ip_network(item.strip(), strict=False)
            for item in settings.webhook_allow_cidrs.split(",")
            if item.strip()
        )
    except ValueError as exc:
        raise InvalidSpec(f"EDITQUEUE_WEBHOOK_ALLOW_CIDRS: {exc}; write e.g. 127.0.0.0/8") from None


def _embedded_v4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _COMPAT and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refused_rule(address: IPAddress, allow: Sequence[Network] = ()) -> str | None:
    """The rule an address breaks (e.g. "loopback"), or None when a webhook may go there."""
    if any(address.version == net.version and address in net for net in allow):
        return None
    for name, networks in RULES:
        if any(address.version == net.version and address in net for net in networks):
            return name
    inner = _embedded_v4(address)
    if inner is not None:
        rule = refused_rule(inner, allow)
        return None if rule is None else f"{rule} (as an IPv6 form of {inner})"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:  # 2130706433, 0x7f.1, 127.1 ...: the forms inet_aton (and so many clients) accept
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _addresses(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        found = [ipaddress.ip_address(a.split("%")[0]) for a in resolver(host, port)]
    except (OSError, UnicodeError, ValueError):
        found = []
    if not found:
        raise WebhookRefused(f"webhook host {host!r} does not resolve; check the URL")
    return found


def check_destination(url: str, allow: Sequence[Network], resolver: Resolver) -> Destination:
    """The checked destination of `url`; WebhookRefused naming the rule it breaks."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in DEFAULT_PORTS or not host:
        raise WebhookRefused("webhook_url must be an http:// or https:// URL with a host")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise WebhookRefused("webhook_url has an invalid port") from None
    addresses = _addresses(host, port, resolver)
    for address in addresses:
        rule = refused_rule(address, allow)
        if rule is not None:
            raise WebhookRefused(
                f"webhook host {host!r} is {address}, a {rule} address; webhooks go to public "
                "addresses only (an operator may allow networks with EDITQUEUE_WEBHOOK_ALLOW_CIDRS)"
            )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(scheme, host, port, str(addresses[0]), target)
