"""Thought signatures: HMACs binding a returned part to its model and its exact content."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

# A fixed prefix makes a signature from some other system fail fast and readably.
_VERSION = b"eqsig1"


def decode_base64(text: str) -> bytes:
    """Decode base64 in the standard or URL-safe alphabet, with or without padding."""
    cleaned = "".join(text.split()).replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not valid base64") from exc


def secret_for(seed: int | None, explicit: str | None) -> bytes:
    """The signing secret: explicit, else derived from the seed, else random per process."""
    if explicit is not None:
        return explicit.encode()
    if seed is not None:
        # Same seed, same secret: a restarted emulator still accepts the signatures it issued.
        return hashlib.sha256(f"editqueue-emulator-secret:{seed}".encode()).digest()
    return secrets.token_bytes(32)


def _normalise_model(model: str) -> str:
    return model.removeprefix("models/")


class Signer:
    """Issues and checks signatures for one server secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, model: str, kind: str, content: bytes) -> bytes:
        message = b"\0".join((_VERSION, _normalise_model(model).encode(), kind.encode(), content))
        return _VERSION + hmac.new(self._secret, message, hashlib.sha256).digest()

    def sign(self, model: str, kind: str, content: bytes) -> str:
        """A standard-base64 signature over the model id, part kind and content."""
        return base64.b64encode(self._mac(model, kind, content)).decode("ascii")

    def verify(self, model: str, kind: str, content: bytes, signature: str) -> bool:
        """True when `signature` (either base64 alphabet) was issued for exactly this content."""
        try:
            given = decode_base64(signature)
        except ValueError:
            return False
        return hmac.compare_digest(given, self._mac(model, kind, content))
