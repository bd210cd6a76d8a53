"""`python -m emulator` / `editqueue emulator` prints its URL and serves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests
from click.testing import CliRunner

from emulator.cli import emulator_command
from tests.emulator.helpers import error_of, generate, request_body, user

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_python_m_emulator_prints_its_url_and_serves_the_configured_key() -> None:
    command = [sys.executable, "-m", "emulator", "--port", "0", "--seed", "3", "--api-key", "k1"]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        url = line.rsplit(" ", 1)[-1]
        health = requests.get(f"{url}/healthz", timeout=5)
        wrong = generate(url, request_body([user("x")]), key="k2")
        right = generate(url, request_body([user("x")]), key="k1")
    finally:
        process.terminate()
        process.wait(timeout=5)
    assert line.startswith("editqueue emulator listening on http://127.0.0.1:")
    assert health.status_code == 200
    assert error_of(wrong)["details"][0]["reason"] == "API_KEY_INVALID"
    assert right.status_code == 200


def test_an_unknown_fault_name_is_a_usage_error() -> None:
    result = CliRunner().invoke(emulator_command, ["--fault-rate", "kaboom=0.1"])
    assert result.exit_code == 2
    assert "unknown fault 'kaboom'" in result.output


def test_rates_summing_over_one_are_a_usage_error() -> None:
    args = ["--fault-rate", "503=0.8", "--fault-rate", "500=0.8"]
    result = CliRunner().invoke(emulator_command, args)
    assert result.exit_code == 2
    assert "sum to <= 1" in result.output


def test_help_lists_every_documented_flag() -> None:
    result = CliRunner().invoke(emulator_command, ["--help"])
    flags = [
        "--host",
        "--port",
        "--api-key",
        "--no-strict",
        "--seed",
        "--latency-s",
        "--latency-jitter-s",
        "--fault-rate",
        "--retry-delay-s",
        "--hang-s",
        "--mime-lie-rate",
    ]
    assert result.exit_code == 0
    assert all(flag in result.output for flag in flags)
