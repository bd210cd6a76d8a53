"""The ObjectStore contract, run against LocalStore, MemoryStore and S3Store (moto in-process)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from shared.config import load_settings
from shared.errors import InvalidSpec, ObjectNotFound
from shared.s3 import S3Store
from shared.storage import LocalStore, MemoryStore, ObjectStore, open_store

UNSAFE_KEYS = ["", "/etc/passwd", "../outside", "a/../../outside", "a//b", "./a", "a/."]


@pytest.fixture(params=["local", "memory", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
    elif request.param == "memory":
        yield MemoryStore()
    else:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with mock_aws():
            s3 = S3Store("contract", "editqueue")
            s3.ensure_bucket()
            yield s3


def test_put_then_get_round_trips_every_byte_value(store: ObjectStore) -> None:
    data = bytes(range(256)) * 4
    store.put("blobs/sha256/x", data)
    assert store.get("blobs/sha256/x") == data


def test_put_replaces_an_existing_object(store: ObjectStore) -> None:
    store.put("sessions/s/turns/0001/failure.json", b"old")
    store.put("sessions/s/turns/0001/failure.json", b"new")
    assert store.get("sessions/s/turns/0001/failure.json") == b"new"


def test_get_of_a_missing_key_raises_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.get("sessions/none/session.json")


def test_get_of_a_key_that_is_only_a_prefix_of_others_raises_object_not_found(
    store: ObjectStore,
) -> None:
    store.put("sessions/s/session.json", b"{}")
    with pytest.raises(ObjectNotFound):
        store.get("sessions/s")
    with pytest.raises(ObjectNotFound):
        store.get("sessions/s/session.json/more")


def test_put_if_absent_creates_once_and_keeps_the_first_body(store: ObjectStore) -> None:
    assert store.put_if_absent("sessions/s/turns/0001/result.json", b"first") is True
    assert store.put_if_absent("sessions/s/turns/0001/result.json", b"second") is False
    assert store.get("sessions/s/turns/0001/result.json") == b"first"


def test_put_if_absent_race_between_threads_has_exactly_one_winner(store: ObjectStore) -> None:
    barrier = threading.Barrier(12)
    results: dict[int, bool] = {}

    def attempt(i: int) -> None:
        barrier.wait()
        results[i] = store.put_if_absent("sessions/s/turns/0002/request.json", b"w%d" % i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, created in results.items() if created]
    assert len(results) == 12 and len(winners) == 1
    assert store.get("sessions/s/turns/0002/request.json") == b"w%d" % winners[0]


def test_exists_and_delete_follow_the_object(store: ObjectStore) -> None:
    assert store.exists("sessions/s/cancel") is False
    store.put("sessions/s/cancel", b"")
    assert store.exists("sessions/s/cancel") is True
    assert store.exists("sessions/s") is False
    store.delete("sessions/s/cancel")
    store.delete("sessions/s/cancel")  # idempotent
    assert store.exists("sessions/s/cancel") is False


def test_list_yields_matching_keys_in_lexical_order(store: ObjectStore) -> None:
    keys = [
        "sessions/s1/turns/0002/request.json",
        "sessions/s10/session.json",
        "sessions/s1/session.json",
        "sessions/s1/turns/0001/result.json",
        "sessions/s1/turns/0001/request.json",
        "blobs/sha256/ab",
    ]
    for key in keys:
        store.put(key, b"{}")
    assert list(store.list("sessions/s1/")) == [
        "sessions/s1/session.json",
        "sessions/s1/turns/0001/request.json",
        "sessions/s1/turns/0001/result.json",
        "sessions/s1/turns/0002/request.json",
    ]
    assert list(store.list("sessions/s1")) == sorted(k for k in keys if k.startswith("sessions/s1"))
    assert list(store.list("")) == sorted(keys)
    assert list(store.list("nothing/")) == []


def test_download_to_writes_the_bytes_and_replaces_an_old_file(
    store: ObjectStore, tmp_path: Path
) -> None:
    store.put("blobs/sha256/img", b"\xff\xd8jpeg")
    target = tmp_path / "out" / "deep" / "img.jpg"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"stale and longer than the new content")
    store.download_to("blobs/sha256/img", target)
    assert target.read_bytes() == b"\xff\xd8jpeg"
    assert [p.name for p in target.parent.iterdir()] == ["img.jpg"]


def test_download_to_of_a_missing_key_raises_and_leaves_no_file(
    store: ObjectStore, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "missing.bin"
    with pytest.raises(ObjectNotFound):
        store.download_to("blobs/sha256/missing", target)
    assert not target.exists()
    assert not target.parent.exists() or list(target.parent.iterdir()) == []


def _calls(store: ObjectStore, key: str, tmp_path: Path) -> list[Callable[[], object]]:
    return [
        lambda: store.get(key),
        lambda: store.put(key, b"x"),
        lambda: store.put_if_absent(key, b"x"),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.download_to(key, tmp_path / "dl"),
    ]


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_are_refused_by_every_method(
    store: ObjectStore, tmp_path: Path, key: str
) -> None:
    for call in _calls(store, key, tmp_path):
        with pytest.raises(ValueError, match="invalid object key"):
            call()
    assert not (tmp_path / "outside").exists()
    assert not (tmp_path / "dl").exists()


@pytest.mark.parametrize("prefix", ["../", "/etc/", "a/../../", "./"])
def test_unsafe_list_prefixes_are_refused(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(ValueError, match="invalid key prefix"):
        list(store.list(prefix))


# --- LocalStore specifics ------------------------------------------------------------------------


def test_local_store_never_lists_files_outside_its_root(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("not yours")
    store = LocalStore(tmp_path / "store")
    store.put("a", b"x")
    with pytest.raises(ValueError):
        list(store.list("../"))
    assert list(store.list("")) == ["a"]


def test_local_store_hides_its_temp_files_and_leaves_none_behind(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("k/a", b"1")
    store.put_if_absent("k/b", b"2")
    store.put_if_absent("k/b", b"3")
    (tmp_path / "k" / ".tmp-crashed").write_bytes(b"partial")
    assert list(store.list("k/")) == ["k/a", "k/b"]
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == [".tmp-crashed", "a", "b"]


def test_memory_store_copies_the_bytes_it_is_given() -> None:
    store = MemoryStore()
    data = bytearray(b"abc")
    store.put("k", data)  # type: ignore[arg-type]
    data[0] = ord("z")
    assert store.get("k") == b"abc"


# --- open_store ----------------------------------------------------------------------------------


def test_open_store_picks_the_implementation_from_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    local = open_store(load_settings(store_url=f"file://{tmp_path}/data"))
    assert isinstance(local, LocalStore) and local.root == tmp_path / "data"
    assert isinstance(open_store(load_settings(store_url="memory://")), MemoryStore)
    s3 = open_store(load_settings(store_url="s3://bucket/some/prefix"))
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.prefix) == ("bucket", "some/prefix/")


def test_open_store_refuses_an_unknown_scheme_and_says_what_to_use() -> None:
    with pytest.raises(InvalidSpec, match=r"s3://bucket/prefix or file:///path"):
        open_store(load_settings(store_url="ftp://host/x"))
