"""The machine's object cache: by content tag (never stale), and write-once objects by key."""

from __future__ import annotations

from pathlib import Path

from shared.blobcache import ObjectCache, content_tag


def test_bytes_come_back_by_their_tag_in_another_process_of_the_machine(tmp_path: Path) -> None:
    data = b'{"a": 1}'
    ObjectCache(tmp_path).put(data)

    other = ObjectCache(tmp_path)  # another worker process: nothing in memory, same directory

    assert other.get('"' + content_tag(data) + '"') == data  # an ETag comes quoted
    assert other.get(content_tag(b"replaced")) is None  # a new ETag is a miss, never old bytes
    assert other.get("abc-2") is None  # a multipart ETag is not a content tag


def test_a_torn_file_is_ignored(tmp_path: Path) -> None:
    tag = content_tag(b"whole")
    (tmp_path / f"obj-{tag}").write_bytes(b"who")

    assert ObjectCache(tmp_path).get(tag) is None


def test_write_once_objects_are_found_by_key_within_their_store_only(tmp_path: Path) -> None:
    ObjectCache(tmp_path, namespace="s3://a/").keep_written_once("sessions/x/session.json", b"{}")

    assert ObjectCache(tmp_path, "s3://a/").written_once("sessions/x/session.json") == b"{}"
    assert ObjectCache(tmp_path, "s3://b/").written_once("sessions/x/session.json") is None
