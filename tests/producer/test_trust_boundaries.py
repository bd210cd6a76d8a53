"""Submits are all or nothing; limits come from settings; ids scoped by tenant; images decoded."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from producer import submission
from producer.cli import main
from producer.context import CliState
from shared.errors import InvalidSpec, SessionExists, StorageUnavailable
from shared.images import require_image
from shared.keys import INDEX_OPEN, SESSIONS
from shared.services import Services
from shared.session_spec import SessionSpec
from shared.storage import MemoryStore
from tests.producer.conftest import fail_turn, jpeg_bytes, png_bytes, png_claiming, spec_of


class FailingStore(MemoryStore):
    """Fails the n-th write: a store outage in the middle of a submit."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.writes, self.fail_at = 0, fail_at
        self._count = threading.Lock()  # a session's later turns are written at once

    def put_if_absent(self, key: str, data: bytes) -> bool:
        with self._count:
            self.writes += 1
            fail = self.writes == self.fail_at
        if fail:
            raise StorageUnavailable(f"cannot write {key}")
        return super().put_if_absent(key, data)


def with_settings(services: Services, **settings: object) -> Services:
    return dataclasses.replace(services, settings=services.settings.model_copy(update=settings))


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4, 5])
def test_a_submit_that_fails_midway_leaves_no_session_at_all(
    services: Services, tmp_path: Path, fail_at: int
) -> None:
    store = FailingStore(fail_at)  # writes: turn 1, then turns 2-4 at once, then session.json
    broken = dataclasses.replace(services, repo=type(services.repo)(store))

    with pytest.raises(StorageUnavailable):
        submission.submit_session(
            broken, spec_of("a", "b", "c", "d", session_id="half"), base_dir=tmp_path
        )

    assert [k for k in store.list(SESSIONS)] == []
    assert [k for k in store.list(INDEX_OPEN)] == []
    assert list(broken.repo.session_ids()) == []


class OutageStore(MemoryStore):
    """Refuses turn 3's request, and every delete but those `spared`: an outage in the middle
    of a submit that lasts through its clean-up."""

    def __init__(self, spared: str = "") -> None:
        super().__init__()
        self.spared = spared

    def put_if_absent(self, key: str, data: bytes) -> bool:
        if key.endswith("turns/0003/request.json"):
            time.sleep(0.02)  # the other writes land first
            raise StorageUnavailable(f"cannot write {key}")
        return super().put_if_absent(key, data)

    def delete(self, key: str) -> None:
        if not self.spared or not key.endswith(self.spared):
            raise StorageUnavailable(f"cannot delete {key}")
        super().delete(key)


def test_an_outage_midway_leaves_no_open_marker_for_the_sweep_to_read_forever(
    services: Services, tmp_path: Path
) -> None:
    store = OutageStore()
    broken = dataclasses.replace(services, repo=type(services.repo)(store))

    with pytest.raises(StorageUnavailable, match="turns/0003"):
        submission.submit_session(
            broken, spec_of("a", "b", "c", "d", session_id="half"), base_dir=tmp_path
        )

    assert [k for k in store.list(INDEX_OPEN)] == []  # written only once every turn was
    assert list(broken.repo.session_ids()) == []


def test_a_clean_up_that_cannot_finish_keeps_the_id_claimed_so_no_retry_inherits_its_turns(
    services: Services, tmp_path: Path
) -> None:
    store = OutageStore(spared="turns/0001/request.json")
    broken = dataclasses.replace(services, repo=type(services.repo)(store))
    with pytest.raises(StorageUnavailable, match="turns/0003"):
        submission.submit_session(
            broken, spec_of("a", "b", "c", session_id="half"), base_dir=tmp_path
        )

    with pytest.raises(InvalidSpec, match="already exists"):  # not a session with turn 2 "b"
        submission.submit_session(broken, spec_of("only", session_id="half"), base_dir=tmp_path)
    assert store.get("sessions/half/turns/0001/request.json")  # the claim stays
    assert list(broken.repo.session_ids()) == []


def test_a_lone_surrogate_is_refused_before_anything_is_written(
    services: Services, tmp_path: Path
) -> None:
    with pytest.raises(InvalidSpec, match="surrogate"):
        submission.append_turn(
            services,
            submission.submit_session(services, spec_of("a"), base_dir=tmp_path),
            spec_of("b \ud800").turns[0],
            tmp_path,
        )
    with pytest.raises(InvalidSpec, match="surrogate"):
        submission.submit_session(services, spec_of("x \udc00"), base_dir=tmp_path)

    assert len(list(services.repo.session_ids())) == 1  # only the first, whole session


def test_limits_come_from_the_settings_and_name_them(services: Services, tmp_path: Path) -> None:
    tight = with_settings(services, max_turns=2, max_prompt_chars=5, max_reference_images=1)
    (tmp_path / "a.png").write_bytes(png_bytes())

    cases = [
        (spec_of("a", "b", "c"), "EDITQUEUE_MAX_TURNS"),
        (spec_of("abcdef"), "EDITQUEUE_MAX_PROMPT_CHARS"),
        (_spec_with_images(["a.png", "a.png"]), "EDITQUEUE_MAX_REFERENCE_IMAGES"),
    ]
    for spec, setting in cases:
        with pytest.raises(InvalidSpec, match=setting):
            submission.submit_session(tight, spec, base_dir=tmp_path)
    assert list(tight.repo.session_ids()) == []


def _spec_with_images(images: list[str]) -> SessionSpec:
    return SessionSpec.model_validate({"turns": [{"prompt": "a", "images": images}]})


def test_a_session_without_a_budget_gets_its_tenants_else_the_fleets(
    services: Services, tmp_path: Path
) -> None:
    capped = with_settings(services, default_budget_usd=5.0, tenant_budgets_usd={"acme": 2.5})

    acme = submission.submit_session(capped, spec_of("a"), base_dir=tmp_path, tenant="acme")
    other = submission.submit_session(capped, spec_of("a"), base_dir=tmp_path, tenant="globex")
    own = submission.submit_session(capped, spec_of("a", budget_usd=9.0), base_dir=tmp_path)

    budgets = [capped.repo.session(sid).budget_usd for sid in (acme, other, own)]
    assert budgets == [2.5, 5.0, 9.0]


def test_the_same_client_id_in_two_tenants_is_two_sessions(
    services: Services, tmp_path: Path
) -> None:
    first = submission.submit_session(
        services, spec_of("a", session_id="room"), base_dir=tmp_path, tenant="acme"
    )
    second = submission.submit_session(
        services, spec_of("b", session_id="room"), base_dir=tmp_path, tenant="globex"
    )

    assert (first, second) == ("acme.room", "globex.room")
    with pytest.raises(SessionExists, match="session id room already exists"):
        submission.submit_session(
            services, spec_of("c", session_id="room"), base_dir=tmp_path, tenant="acme"
        )


def test_cli_sessions_belong_to_the_cli_tenant_and_keep_their_ids(
    services: Services, tmp_path: Path
) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("session_id: kitchen\nturns:\n  - prompt: a\n")
    state = CliState(services=services)

    result = CliRunner().invoke(main, ["submit", str(spec)], obj=state)

    assert result.exit_code == 0, result.output
    assert result.output.split() == ["kitchen"]
    assert services.repo.session("kitchen").tenant == "cli"


def test_status_prints_tenant_text_with_control_characters_escaped(
    services: Services, tmp_path: Path
) -> None:
    hostile = "a\x1b]0;owned\x07 room\x00\u202e"
    sid = submission.submit_session(services, spec_of(hostile), base_dir=tmp_path)
    fail_turn(services, sid, 1)
    state = CliState(services=services)

    result = CliRunner().invoke(main, ["status", sid], obj=state)

    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\x00" not in result.output and "\u202e" not in result.output
    assert "a\\x1b]0;owned\\x07 room" in result.output


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (png_claiming(20_000, 20_000), "EDITQUEUE_MAX_IMAGE_PIXELS"),
        (png_claiming(7_000, 7_000), "EDITQUEUE_MAX_IMAGE_PIXELS"),  # under Pillow's own cap
        (b"GIF89a<html>hello</html>", "does not decode"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "does not decode"),
        (jpeg_bytes()[:200], "does not decode"),  # cut short
    ],
)
def test_reference_images_are_decoded_within_the_pixel_cap(data: bytes, says: str) -> None:
    with pytest.raises(InvalidSpec, match=says):
        require_image(data, "ref.png", 40_000_000)


def test_a_real_image_decodes() -> None:
    assert require_image(png_bytes(), "ok.png", 40_000_000) == "image/png"
    assert require_image(jpeg_bytes(), "ok.jpg", 40_000_000) == "image/jpeg"
