"""The CLI's context: settings and services, built on first use and at most once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shared.config import Settings, load_settings
from shared.errors import InvalidSpec
from shared.services import Services, build_services


@dataclass
class CliState:
    """Settings and services, built on first use (tests pass their own)."""

    settings: Settings | None = None
    services: Services | None = None

    def get_settings(self) -> Settings:
        """The settings from the environment and `.env`, loaded once."""
        if self.settings is None:
            self.settings = _load_settings()
        return self.settings

    def get_services(self) -> Services:
        """Store, broker, coordinator and API client from the settings, built once."""
        if self.services is None:
            try:
                self.services = build_services(self.get_settings())
            except ValueError as exc:  # e.g. a broker URL redis-py cannot parse
                raise InvalidSpec(f"EDITQUEUE_BROKER_URL: {exc}") from None
        return self.services


def _load_settings() -> Settings:
    try:
        return load_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{_env_name(error['loc'])}: {error['msg']}" for error in exc.errors()
        )  # never the input: it could be the API key
        raise InvalidSpec(f"invalid settings: {problems}") from None


NESTED_SETTINGS = ("quality",)  # set field by field: EDITQUEUE_QUALITY__<NAME>


def _env_name(loc: tuple[Any, ...]) -> str:
    name = str(loc[0]) if loc else "settings"
    if name in NESTED_SETTINGS and len(loc) > 1:
        name = f"{name}__{loc[1]}"
    return name if name.isupper() else f"EDITQUEUE_{name.upper()}"
