"""What a newcomer meets first: the Makefile's messages, docker-compose.yml and the Dockerfile.

No Docker engine runs here: the compose file is checked by `docker-compose config` (when
installed; CI installs it) and by reading it and the Dockerfile, as the containers would use them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import need

ROOT = Path(__file__).resolve().parents[1]
FAKE_PYTHON = """#!/bin/sh
# stands in for `python3 -m venv DIR`: a venv whose pip exits with $FAKE_PIP_EXIT
mkdir -p "$3/bin"
printf '#!/bin/sh\\necho "pip says: resolver trouble"\\nexit %s\\n' "$FAKE_PIP_EXIT" > "$3/bin/pip"
chmod +x "$3/bin/pip"
"""


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def dockerfile_steps() -> list[tuple[str, str]]:
    """(instruction, arguments) per Dockerfile step, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    steps = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, rest = line.strip().partition(" ")
            steps.append((instruction.upper(), " ".join(rest.split())))
    return steps


def outside_make() -> dict[str, str]:
    """The environment without make's own variables (`make test` runs these tests)."""
    return {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}


def make_install(tmp_path: Path, pip_exit: int) -> subprocess.CompletedProcess[str]:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    env = {**outside_make(), "FAKE_PIP_EXIT": str(pip_exit)}
    return subprocess.run(
        ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "install", f"PYTHON={fake}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_install_says_what_it_does_how_long_it_takes_and_took(tmp_path: Path) -> None:
    done = make_install(tmp_path, 0)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("install: creating .venv and installing editqueue")
    assert lines[1].startswith("install: this takes about 1-2 minutes the first time")
    assert lines[-1].startswith("install: done in ") and lines[-1].endswith(" s")
    assert (tmp_path / ".venv" / ".installed").exists()


def test_a_failed_make_install_shows_pips_log_and_fails(tmp_path: Path) -> None:
    done = make_install(tmp_path, 1)

    assert done.returncode != 0
    assert "pip says: resolver trouble" in done.stdout
    assert "install: done" not in done.stdout
    assert not (tmp_path / ".venv" / ".installed").exists()


def test_make_run_says_where_the_outputs_are_and_how_to_open_the_report(tmp_path: Path) -> None:
    """The README's quick start, `make run`, into a folder of this test's."""
    out = tmp_path / "living-room"
    env = {k: v for k, v in outside_make().items() if not k.startswith(("EDITQUEUE_", "GEMINI_"))}

    done = subprocess.run(  # -o: never reinstall from inside a test
        ["make", "-o", ".venv/.installed", "run", f"OUT={out}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert f"outputs: {out}/ holds turn_01.jpg ... turn_05.jpg" in done.stdout
    assert f"open the report: xdg-open {out}/report.html" in done.stdout
    assert f"file://{out}/report.html" in done.stdout
    assert (out / "report.html").exists() and (out / "turn_05.jpg").exists()


def test_the_compose_file_has_no_obsolete_version_key() -> None:
    assert "version" not in compose()


@pytest.mark.parametrize(
    "args", [["config", "-q"], ["--profile", "emulator", "config", "-q"]], ids=["default", "emu"]
)
def test_docker_compose_config_accepts_the_file_without_warnings(args: list[str]) -> None:
    binary = shutil.which("docker-compose")
    need(binary is not None, "docker-compose is not installed (apt-get install docker-compose)")
    assert binary is not None
    env = {**os.environ, "EDITQUEUE_API_BASE_URL": "http://emulator:8080"}
    env.pop("GEMINI_API_KEY", None)

    done = subprocess.run(
        [binary, "-f", "docker-compose.yml", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    for word in ("warn", "obsolete", "deprecat"):
        assert word not in done.stderr.lower(), done.stderr


def test_the_worker_runs_as_a_user_who_owns_its_cache_volume() -> None:
    worker = compose()["services"]["worker"]
    cache_dir = compose()["x-editqueue-env"]["EDITQUEUE_BLOB_CACHE_DIR"]
    assert f"blob-cache:{cache_dir}" in worker["volumes"]
    steps = dockerfile_steps()
    users = [args for instruction, args in steps if instruction == "USER"]
    assert users and users[-1] != "root"
    user = users[-1]
    before_user = steps[: steps.index(("USER", user))]
    runs = " && ".join(args for instruction, args in before_user if instruction == "RUN")
    # A new named volume takes the owner of the image's directory at its mount point.
    assert f"mkdir -p {cache_dir}" in runs
    assert f"chown {user}:{user} {cache_dir}" in runs


def test_the_emulator_profile_needs_no_key() -> None:
    data = compose()
    emulator = data["services"]["emulator"]
    assert emulator["profiles"] == ["emulator"]
    assert "--api-key" not in emulator["command"]  # so it accepts any key, and a worker none
    env = data["x-editqueue-env"]
    assert env["GEMINI_API_KEY"] == "${GEMINI_API_KEY:-}"
    # compose cannot make the workers wait for a profile's service: they wait themselves
    assert float(env["EDITQUEUE_STARTUP_WAIT_S"]) >= 30
