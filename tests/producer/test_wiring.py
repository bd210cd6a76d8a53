"""Per-role wiring: producer commands build only the core (no Gemini client) and leave no
temp folder behind; the blob cache has one stable default per machine."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from producer.cli import main
from shared.config import load_settings
from shared.gemini import HttpGeminiClient
from shared.services import build_services, default_blob_dir
from worker.gemini_batch import HttpBatchApi
from worker.interactions import HttpInteractionsClient


def _refuse(*_: Any, **__: Any) -> None:
    raise AssertionError("a producer command built an API client")


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty temp directory that every `tempfile` call of the commands would land in."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("EDITQUEUE_STORE_URL", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("EDITQUEUE_BROKER_URL", "memory://")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for client in (HttpGeminiClient, HttpBatchApi, HttpInteractionsClient):
        monkeypatch.setattr(client, "__init__", _refuse)
    return folder


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))  # a fresh CliState: settings from the env
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.stdout


def test_twenty_producer_commands_build_no_api_client_and_leave_no_temp_folder(
    tmp_path: Path, scratch: Path
) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("turns:\n  - prompt: a room\n  - prompt: paint it green\n")
    sids = []
    for n in range(5):
        out = _cli("submit", str(spec), "--batch-id", f"b{n}", "--budget-usd", "5")
        sids.append(out.split()[0])
    for n, sid in enumerate(sids):
        _cli("status", sid)
        _cli("budget", f"b{n}", "--usd", "7.5")
        _cli("cancel", sid)
        _cli("status", "--json", sid)

    assert list(scratch.iterdir()) == []
    blobs = tmp_path / "cache" / "editqueue" / "blobs"
    assert default_blob_dir() == blobs and blobs.is_dir()


def test_the_blob_cache_is_one_folder_per_machine_with_a_size_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    settings = load_settings(store_url="memory://", broker_url="memory://")
    first, second = build_services(settings), build_services(settings)

    assert first.blobs.directory == second.blobs.directory == default_blob_dir()
    assert first.blobs.max_bytes == settings.blob_cache_max_bytes == 4 * 1024**3
    capped = settings.model_copy(update={"blob_cache_max_bytes": 1000})
    small = build_services(capped).blobs
    for n in range(4):
        small.put(bytes([n]) * 400)
    assert sum(p.stat().st_size for p in small.directory.iterdir()) <= 1000
