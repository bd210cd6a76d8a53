"""One shared emulator per test module, with short hang and drip settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator import EmulatorConfig, RunningEmulator, start_emulator

TEST_CONFIG = EmulatorConfig(seed=7, hang_s=0.5, drip_interval_s=0.02, retry_delay_s=1.5)


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    """A strict emulator on a free port."""
    with start_emulator(TEST_CONFIG) as running:
        yield running


@pytest.fixture
def url(emulator: RunningEmulator) -> str:
    """Base URL of the shared emulator."""
    return emulator.url
