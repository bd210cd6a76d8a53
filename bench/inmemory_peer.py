"""The in-memory implementation bench/memory.py measures: the article's way, one thread a session.

Each session's history is held as base64 strings in `contents`; each thread builds the request
JSON in memory and posts it with `requests`, then keeps the answer in `contents` too. Imports only
what such a script needs, so its resident memory is its own. Prints its figures as JSON.

    python bench/inmemory_peer.py URL SESSIONS.json
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import requests

MODEL = "gemini-3.1-flash-image"


def memory_mb(field: str) -> float:
    """VmRSS or VmHWM of this process, in MiB."""
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def load(manifest: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Every session's `contents`: prompts, and model turns with base64 images and signatures."""
    sessions = []
    for files in manifest["sessions"]:
        contents: list[dict[str, Any]] = []
        for n, entry in enumerate(files):
            data = base64.b64encode(Path(entry["path"]).read_bytes()).decode()
            part = {"inlineData": {"mimeType": "image/jpeg", "data": data}}
            contents.append({"role": "user", "parts": [{"text": manifest["prompts"][n]}]})
            contents.append(
                {"role": "model", "parts": [{**part, "thoughtSignature": entry["sig"]}]}
            )
        contents.append({"role": "user", "parts": [{"text": manifest["prompts"][len(files)]}]})
        sessions.append(contents)
    return sessions


def main() -> None:
    url, path = sys.argv[1], Path(sys.argv[2])
    baseline = memory_mb("VmRSS")
    manifest = json.loads(path.read_text())
    sessions = load(manifest)
    start = threading.Barrier(len(sessions))

    def turn(contents: list[dict[str, Any]]) -> None:
        start.wait()
        response = requests.post(
            f"{url}/v1beta/models/{MODEL}:generateContent",
            headers={"x-goog-api-key": manifest["key"]},
            json={"contents": contents, "generationConfig": manifest["config"]},
            timeout=120,
        )
        response.raise_for_status()
        parts = response.json()["candidates"][0]["content"]["parts"]
        contents.append({"role": "model", "parts": parts})
        image = next(p for p in parts if "inlineData" in p)
        base64.b64decode(image["inlineData"]["data"])  # the image the article saves

    threads = [threading.Thread(target=turn, args=(c,)) for c in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"baseline": baseline, "peak": memory_mb("VmHWM")}))


if __name__ == "__main__":
    main()
