"""The emulator's one frozen configuration object and its defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from emulator.models import REQUEST_LIMIT_BYTES

DEFAULT_HOST = "127.0.0.1"
DEFAULT_RETRY_DELAY_S = 2.0
DEFAULT_HANG_S = 30.0
DEFAULT_DRIP_INTERVAL_S = 0.5
DEFAULT_JPEG_QUALITY = 92
FAULT_RETRY_DELAY_CAP_S = 3600.0
DEFAULT_BATCH_TURNAROUND_S = 5.0

# Every fault the emulator can inject, by the name used in `--fault-rate` and `!fault=`.
FAULT_NAMES: tuple[str, ...] = (
    "429",
    "429bare",
    "429daily",
    "500",
    "502",
    "503",
    "504",
    "hang",
    "drip",
    "truncated",
    "notjson",
    "blocked",
    "image_safety",
    "prohibited",
    "noimage",
    "textonly",
    "nocandidate",
    "400",
    "403",
    # image faults: a 200 with a flawed image (emulator/image_faults.py)
    "frame_zoom",
    "frame_pan",
    "colour_cast",
    "edit_spill",
    "colour_off",
    "blur",
)

ImageFormat = Literal["jpeg", "png"]

DEFAULT_INTERACTION_TTL_S = 55 * 24 * 3600.0  # Google's documented paid-tier retention


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulator listens, validates, signs, draws and misbehaves."""

    host: str = DEFAULT_HOST
    port: int = 0  # 0 picks a free port; RunningEmulator.url tells which
    api_key: str | None = None  # None accepts any non-empty key
    strict: bool = True  # reject replayed model parts with missing or forged signatures
    seed: int | None = None  # seeds faults, latency jitter and the signing secret
    signature_secret: str | None = None  # overrides the seed-derived signing secret
    latency_s: float = 0.0
    latency_jitter_s: float = 0.0
    fault_rates: dict[str, float] = field(default_factory=dict)
    retry_delay_s: float = DEFAULT_RETRY_DELAY_S
    hang_s: float = DEFAULT_HANG_S  # a hang sleeps this long; a drip stops after this long
    drip_interval_s: float = DEFAULT_DRIP_INTERVAL_S
    max_request_bytes: int = REQUEST_LIMIT_BYTES
    mime_lie_rate: float = 0.0  # share of images declared image/png while the bytes are JPEG
    image_format: ImageFormat = "jpeg"
    jpeg_quality: int = DEFAULT_JPEG_QUALITY
    batch_turnaround_s: float = (
        DEFAULT_BATCH_TURNAROUND_S  # a batch job ends this long after create
    )
    batch_expire_jobs: int = 0  # the first N batch jobs end EXPIRED (the expiry fault)
    flex_latency_s: float = 0.0  # extra latency of a serviceTier=flex call
    flex_shed_rate: float = 0.0  # share of flex calls shed with 503 UNAVAILABLE
    # How long a stored interaction lives (Google: 55 days paid, 1 day free); short for tests.
    interaction_ttl_s: float = DEFAULT_INTERACTION_TTL_S

    def __post_init__(self) -> None:
        unknown = sorted(set(self.fault_rates) - set(FAULT_NAMES))
        if unknown:
            raise ValueError(f"unknown fault names {unknown}; known: {', '.join(FAULT_NAMES)}")
        bad = {name: r for name, r in self.fault_rates.items() if not 0.0 <= r <= 1.0}
        if bad or sum(self.fault_rates.values()) > 1.0:
            raise ValueError(f"fault rates must each lie in [0, 1] and sum to <= 1: {bad or ''}")
        if not 0.0 <= self.mime_lie_rate <= 1.0:
            raise ValueError("mime_lie_rate must lie in [0, 1]")
        if not 0.0 <= self.flex_shed_rate <= 1.0 or self.flex_latency_s < 0:
            raise ValueError("flex_shed_rate must lie in [0, 1] and flex_latency_s be >= 0")
        if self.interaction_ttl_s <= 0:
            raise ValueError("interaction_ttl_s must be > 0")
        if self.api_key == "":
            raise ValueError("api_key must be non-empty when set; leave it unset to accept any")


def parse_fault_rate(text: str) -> tuple[str, float]:
    """Parse one `NAME=RATE` option value into its name and rate."""
    name, sep, rate = text.partition("=")
    if not sep:
        raise ValueError(f"expected NAME=RATE, got {text!r}")
    name = name.strip()
    if name not in FAULT_NAMES:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
    return name, float(rate)
