"""Settings: one frozen object built once at process start from the environment and `.env`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.catalog import DEFAULT_MODEL
from shared.verdicts import QualityThresholds

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_STORE_URL = "file://./editqueue-data"
DEFAULT_API_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_API_TIMEOUT_S = 35.0
DEFAULT_BLOB_CACHE_MAX_BYTES = 4 * 1024**3  # 4 GiB of history images per machine
# Longer than the longest task (API deadline x call attempts inside one task is 1, plus storage)
# and the longest countdown (MAX_COUNTDOWN_S), so a running turn is never redelivered.
DEFAULT_VISIBILITY_TIMEOUT_S = 300
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_NO_IMAGE_ATTEMPTS = 3
# Time a turn may spend outside the API call (history download, blob upload, commit).
TASK_MARGIN_S = 10.0
# An HTTP request body above this is refused (413) before it is parsed: one 20 MB reference
# image in base64 (~27 MB) plus the rest of the spec fits.
DEFAULT_HTTP_MAX_BODY_BYTES = 40 * 1024 * 1024
# Flex answers in 1-15 minutes and Google suggests client timeouts of 600 s or more: a flex call's
# total deadline, after which the turn falls back to the standard tier.
DEFAULT_FLEX_TIMEOUT_S = 900.0
DEFAULT_FLEX_VISIBILITY_TIMEOUT_S = 1200
DEFAULT_FLEX_MAX_SHEDS = 3
# Inline batch jobs must total under 20 MB (batch-mode doc); above 16 MB a wave goes as a file.
DEFAULT_BATCH_INLINE_MAX_BYTES = 16 * 1024 * 1024
# What one session may ask for (see producer/limits.py; each has its EDITQUEUE_ setting).
DEFAULT_MAX_TURNS = 500
DEFAULT_MAX_PROMPT_CHARS = 20_000
DEFAULT_MAX_METADATA_BYTES = 16 * 1024
DEFAULT_MAX_MODEL_CHARS = 128
DEFAULT_MAX_REFERENCE_IMAGES = 14  # per turn; Gemini 3 Pro Image takes up to 14
DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000  # decoded width x height of a reference image
# The HTTP server (producer/web/server.py): slow clients and floods.
DEFAULT_HTTP_HEADER_TIMEOUT_S = 10.0
DEFAULT_HTTP_BODY_TIMEOUT_S = 30.0
DEFAULT_HTTP_MAX_CONCURRENCY = 32
DEFAULT_HTTP_MAX_BODY_BYTES_IN_FLIGHT = 4 * DEFAULT_HTTP_MAX_BODY_BYTES
DEFAULT_HTTP_SHUTDOWN_S = 5.0
DEFAULT_CLI_TENANT = "cli"
# Stored interactions live 55 days on the paid tier and 1 day on the free tier (Google's
# Interactions docs); a chain older than this is not tried, the turn is seeded from S3.
DEFAULT_INTERACTION_RETENTION_S = 55 * 24 * 3600.0


def _http_env(name: str) -> str:
    """The documented variable of the HTTP API setting `http_<name>`: EDITQUEUE_API_<NAME>."""
    return f"EDITQUEUE_API_{name.upper()}"


class Settings(BaseSettings):
    """Every knob editqueue reads; nothing else reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="EDITQUEUE_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        env_nested_delimiter="__",  # EDITQUEUE_QUALITY__DRIFT_SHIFT_GOOD=0.05
    )

    broker_url: str = DEFAULT_BROKER_URL
    # With EDITQUEUE_BROKER_URL=sentinel://host:26379;sentinel://host2:26379, the master the
    # Sentinels are asked for (the broker, leases, gate, ledger and live index all follow it).
    sentinel_master: str = Field(default="mymaster", min_length=1)
    store_url: str = DEFAULT_STORE_URL
    s3_endpoint_url: str | None = None
    api_base_url: str = DEFAULT_API_BASE_URL
    api_key: SecretStr | None = Field(default=None, validation_alias="GEMINI_API_KEY")
    model: str = DEFAULT_MODEL
    api_timeout_s: float = Field(default=DEFAULT_API_TIMEOUT_S, gt=0)
    # The fleet's transport for sessions whose spec names none (`transport:` in a spec wins).
    default_transport: Literal["replay", "interactions"] = "replay"
    interaction_retention_s: float = Field(default=DEFAULT_INTERACTION_RETENTION_S, gt=0)
    visibility_timeout_s: int = Field(default=DEFAULT_VISIBILITY_TIMEOUT_S, gt=0)
    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1)
    no_image_attempts: int = Field(default=DEFAULT_NO_IMAGE_ATTEMPTS, ge=1)
    # local blob cache; empty = the machine's default (shared.services.default_blob_dir)
    blob_cache_dir: str = ""
    blob_cache_max_bytes: int = Field(default=DEFAULT_BLOB_CACHE_MAX_BYTES, gt=0)
    price_overrides: dict[str, dict[str, float]] = Field(default_factory=dict)
    # {"model id": ["standard", "flex", "batch"]}: which tiers a model accepts (catalog default)
    tier_overrides: dict[str, list[Literal["standard", "flex", "batch"]]] = Field(
        default_factory=dict
    )
    rate_limit: str | None = None  # the limits library's notation, e.g. "60/minute"
    max_inflight: int | None = Field(default=None, ge=1)
    failpoint: str | None = None  # fault tests only: see worker/failpoints.py
    failpoint_marker: str | None = None
    reconcile_stale_s: float = Field(default=3600.0, gt=0)
    sweep_interval_s: float = Field(default=10.0, gt=0)
    # A running turn's lease, renewed by its worker's heartbeat every third of it: a worker that
    # dies loses its turn to the sweep within about this (plus a third of it).
    lease_ttl_s: float = Field(default=15.0, ge=1)
    reconcile_interval_s: float = Field(default=300.0, gt=0)
    outage_park_s: float = Field(default=300.0, gt=0)
    max_parks: int = Field(default=12, ge=0)
    backoff_base_s: float = Field(default=2.0, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)
    # Tiers: the lane this process serves (`editqueue worker --lane flex` sets it), the Flex
    # deadline, how many shed answers (503) a flex turn takes before it falls back to standard,
    # and the flex lane's own broker visibility timeout.
    lane: Literal["standard", "flex"] = "standard"
    flex_timeout_s: float = Field(default=DEFAULT_FLEX_TIMEOUT_S, gt=0)
    flex_max_sheds: int = Field(default=DEFAULT_FLEX_MAX_SHEDS, ge=1)
    flex_visibility_timeout_s: int = Field(default=DEFAULT_FLEX_VISIBILITY_TIMEOUT_S, gt=0)
    # A worker waits this long for Redis, S3 or the emulator to come up before it refuses.
    startup_wait_s: float = Field(default=0.0, ge=0)
    # Batch waves: how long due turns may keep arriving before a wave is sent (a quiet period),
    # the first and longest wait between polls of a job, and the inline size limit we keep to.
    batch_gather_s: float = Field(default=10.0, ge=0)
    batch_poll_s: float = Field(default=30.0, gt=0)
    batch_poll_max_s: float = Field(default=600.0, gt=0)
    batch_inline_max_bytes: int = Field(default=DEFAULT_BATCH_INLINE_MAX_BYTES, ge=0)
    batch_max_lines: int = Field(default=2000, ge=1)
    # HTTP API (`editqueue api`) and webhooks. The HTTP API's fields are `http_*` in Python; their
    # variables keep the documented names EDITQUEUE_API_* (`_http_env`).
    http_tokens: SecretStr | None = Field(
        default=None, description="token=tenant,... (bearer)", validation_alias=_http_env("tokens")
    )
    http_max_body_bytes: int = Field(
        default=DEFAULT_HTTP_MAX_BODY_BYTES, gt=0, validation_alias=_http_env("max_body_bytes")
    )
    http_presign_images: bool = Field(
        default=True,
        description="redirect image GETs to S3",
        validation_alias=_http_env("presign_images"),
    )
    webhook_secret: SecretStr | None = Field(default=None, description="whsec_<base64>")
    webhook_allow_cidrs: str = Field(
        default="", description="networks webhooks may reach despite the rules, e.g. 127.0.0.0/8"
    )
    http_public_url: str | None = Field(
        default=None,
        description="base of the URLs answers carry (never taken from Host)",
        validation_alias=_http_env("public_url"),
    )
    http_header_timeout_s: float = Field(
        default=DEFAULT_HTTP_HEADER_TIMEOUT_S, gt=0, validation_alias=_http_env("header_timeout_s")
    )
    http_body_timeout_s: float = Field(
        default=DEFAULT_HTTP_BODY_TIMEOUT_S, gt=0, validation_alias=_http_env("body_timeout_s")
    )
    http_max_concurrency: int = Field(
        default=DEFAULT_HTTP_MAX_CONCURRENCY, ge=1, validation_alias=_http_env("max_concurrency")
    )
    http_max_body_bytes_in_flight: int = Field(
        default=DEFAULT_HTTP_MAX_BODY_BYTES_IN_FLIGHT,
        gt=0,
        description="all requests' bodies",
        validation_alias=_http_env("max_body_bytes_in_flight"),
    )
    http_shutdown_s: float = Field(
        default=DEFAULT_HTTP_SHUTDOWN_S, gt=0, validation_alias=_http_env("shutdown_s")
    )
    # Limits on what one session may ask for
    max_turns: int = Field(default=DEFAULT_MAX_TURNS, ge=1)
    max_prompt_chars: int = Field(default=DEFAULT_MAX_PROMPT_CHARS, ge=1)
    max_metadata_bytes: int = Field(default=DEFAULT_MAX_METADATA_BYTES, ge=0)
    max_model_chars: int = Field(default=DEFAULT_MAX_MODEL_CHARS, ge=1)
    max_reference_images: int = Field(default=DEFAULT_MAX_REFERENCE_IMAGES, ge=0)
    max_image_bytes: int = Field(default=DEFAULT_MAX_IMAGE_BYTES, ge=1)
    max_image_pixels: int = Field(default=DEFAULT_MAX_IMAGE_PIXELS, ge=1)
    default_budget_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    tenant_budgets_usd: dict[str, float] = Field(
        default_factory=dict, description='{"tenant": usd}: a session with no budget gets this'
    )
    cli_tenant: str = Field(
        default=DEFAULT_CLI_TENANT, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="CLI's tenant"
    )
    operator_tenant: str | None = Field(
        default=None, description="a tenant of EDITQUEUE_API_TOKENS that sees every session"
    )
    # quality verdicts (shared/verdicts.py): the limits of strong and good per check
    quality: QualityThresholds = Field(default_factory=QualityThresholds)
    # Observability (README "Operating a fleet")
    metrics_port: int | None = Field(default=None, ge=0, le=65535, description="/metrics; 0: off")
    metrics_dir: str | None = Field(
        default=None,
        validation_alias="PROMETHEUS_MULTIPROC_DIR",
        description="prometheus_client's multiprocess directory; empty = a fresh temp dir",
    )
    log_format: Literal["text", "json"] = "text"
    # The standard OpenTelemetry variables that switch tracing on (the SDK reads the rest).
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    otel_traces_exporter: str | None = Field(default=None, validation_alias="OTEL_TRACES_EXPORTER")
    otel_sdk_disabled: bool = Field(default=False, validation_alias="OTEL_SDK_DISABLED")
    otel_service_name: str | None = Field(default=None, validation_alias="OTEL_SERVICE_NAME")

    @property
    def otel_exporter(self) -> str | None:
        """`otlp` or `console` when the OTEL_* variables ask for traces, else None."""
        if self.otel_sdk_disabled:
            return None
        exporter = (self.otel_traces_exporter or "").strip().lower()
        if exporter in ("otlp", "console"):
            return exporter
        if not exporter and self.otel_exporter_otlp_endpoint:
            return "otlp"
        return None

    @property
    def call_timeout_s(self) -> float:
        """The total deadline of one API call in this process's lane."""
        return self.flex_timeout_s if self.lane == "flex" else self.api_timeout_s

    @property
    def lane_visibility_timeout_s(self) -> int:
        """The broker visibility timeout of this process's lane."""
        return self.flex_visibility_timeout_s if self.lane == "flex" else self.visibility_timeout_s

    @property
    def longest_task_s(self) -> float:
        """An upper bound on one delivery of `run_turn`; also the lease a delivery holds."""
        return self.call_timeout_s + TASK_MARGIN_S

    @property
    def max_countdown_s(self) -> float:
        """No countdown in the broker may outlast the visibility timeout (it would duplicate)."""
        return min(self.backoff_max_s, self.lane_visibility_timeout_s / 4)


def load_settings(**overrides: object) -> Settings:
    """Build the settings once; keyword overrides win over the environment."""
    return Settings(**overrides)  # type: ignore[arg-type]
