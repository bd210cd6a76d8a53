"""Reading a finished job's results: inline responses, or the output JSONL file, line by line.

Inline results come in input order with the metadata we sent (our `key`); a file job's output is
a JSONL file of `{"key", "response"}` or `{"key", "error"}` lines (the error shape is our reading
of "a status object instead of a response"). The file is streamed to disk, then read a line at a
time, so a wave of 4K images never sits whole in memory.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shared.errors import MalformedResponse
from worker.gemini_batch import BatchApi

log = logging.getLogger("editqueue.batcher")


def _output(op: dict[str, Any]) -> dict[str, Any]:
    meta = op.get("metadata") or {}
    output = meta.get("output") or op.get("response") or {}
    return output if isinstance(output, dict) else {}


def job_lines(api: BatchApi, op: dict[str, Any], workdir: Path) -> Iterator[tuple[str, Any]]:
    """(key, result) for each line of a SUCCEEDED job's Operation."""
    output = _output(op)
    file_name = output.get("responsesFile")
    if isinstance(file_name, str):
        path = workdir / "output.jsonl"
        api.download(file_name, path)
        yield from _file_lines(path)
        return
    inline = (output.get("inlinedResponses") or {}).get("inlinedResponses") or []
    for item in inline:
        key = ((item.get("metadata") or {}) if isinstance(item, dict) else {}).get("key")
        if isinstance(key, str):
            yield key, item


def _file_lines(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except ValueError as exc:
                raise MalformedResponse(f"line {number} of the batch output is not JSON") from exc
            key = item.get("key") if isinstance(item, dict) else None
            if isinstance(key, str):
                yield key, item
            else:
                log.warning("batch output line %d has no key; ignored", number)
