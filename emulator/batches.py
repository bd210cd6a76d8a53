"""The Batch API: jobs of generateContent requests, inline or from a JSONL file, run later.

Documented (ai.google.dev/api/batch-mode, the google-genai SDK): `models/{m}:batchGenerateContent`
takes `{"batch": {"displayName", "inputConfig": {"requests": {"requests": [{"request",
"metadata"}]}} | {"fileName": "files/..."}}}` and answers an Operation whose `metadata` is the
batch; `batches/{id}` (get, delete), `batches/{id}:cancel`, `batches` (list); states
`BATCH_STATE_PENDING/RUNNING/SUCCEEDED/FAILED/CANCELLED/EXPIRED`; inline results in
`output.inlinedResponses.inlinedResponses` (input order), file results as a JSONL file named by
`output.responsesFile`, one `{"key", "response"}` line per input line. Inferred: a failed line is
`{"key", "error": {code, message, status}}`; the `@type` names; `batchStats` filled in only once
the job ends; the job runs all its lines when the turnaround has passed (on the next read).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from emulator.errors import JsonDict, invalid_argument
from emulator.files import FileStore, not_found, rfc3339

INLINE_LIMIT_BYTES = 20 * 1024 * 1024  # inline jobs must stay under 20 MB (batch-mode doc)
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
PENDING, RUNNING = "BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"
SUCCEEDED, FAILED = "BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED"
CANCELLED, EXPIRED = "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"
ENDED = frozenset({SUCCEEDED, FAILED, CANCELLED, EXPIRED})
DEFAULT_PAGE_SIZE = 50

# (model, request body bytes) -> (HTTP status, response or error JSON)
LineRunner = Callable[[str, bytes], tuple[int, JsonDict]]


@dataclass
class Line:
    """One request of a job: its key (file jobs) or metadata (inline jobs) and the request."""

    request: JsonDict
    key: str | None = None
    metadata: JsonDict | None = None


@dataclass
class Job:
    """One batch job and what it produced."""

    job_id: str
    model: str
    display_name: str
    lines: list[Line]
    from_file: bool
    expires: bool  # the expiry fault: this job will end EXPIRED
    created: float = field(default_factory=time.time)
    state: str = PENDING
    ended: float | None = None
    output: JsonDict = field(default_factory=dict)
    failed_lines: int = 0


def _requests_of(config: JsonDict, files: FileStore) -> tuple[list[Line], bool]:
    if "fileName" in config or "file_name" in config:
        stored = files.get(str(config.get("fileName") or config.get("file_name")))
        return [_file_line(raw, n) for n, raw in enumerate(stored.data.splitlines(), 1)], True
    inline = (config.get("requests") or {}).get("requests")
    if not isinstance(inline, list) or not inline:
        raise invalid_argument("* BatchGenerateContentRequest.batch.input_config: required.")
    return [
        Line(dict(item.get("request") or {}), None, item.get("metadata")) for item in inline
    ], False


def _file_line(raw: bytes | bytearray, number: int) -> Line:
    try:
        item = json.loads(raw)
    except ValueError as exc:
        raise invalid_argument(f"Invalid JSON on line {number} of the input file.") from exc
    if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
        raise invalid_argument(f"Line {number} of the input file has no 'request' object.")
    return Line(item["request"], str(item.get("key", number)))


class BatchService:
    """Jobs in memory; each advances by the clock when read."""

    def __init__(
        self,
        files: FileStore,
        run_line: LineRunner,
        turnaround_s: float,
        expire_jobs: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._files = files
        self._run_line = run_line
        self._turnaround_s = turnaround_s
        self._expire_left = expire_jobs
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self.lines_run = 0

    def create(self, model: str, body: JsonDict, body_bytes: int) -> Job:
        """A new PENDING job from the create call's body."""
        batch = body.get("batch")
        if not isinstance(batch, dict):
            raise invalid_argument("* BatchGenerateContentRequest.batch: required field.")
        config = batch.get("inputConfig") or batch.get("input_config") or {}
        lines, from_file = _requests_of(config, self._files)
        if not from_file and body_bytes > INLINE_LIMIT_BYTES:
            raise invalid_argument("Inline batch requests must total under 20 MB; use a file.")
        with self._lock:
            expires = self._expire_left > 0
            self._expire_left -= int(expires)
            job = Job(
                secrets.token_hex(8),
                model,
                str(batch.get("displayName") or ""),
                lines,
                from_file,
                expires,
                created=self._clock(),
            )
            self._jobs[job.job_id] = job
        return job

    def get(self, job_id: str) -> Job:
        """The job, advanced to where its turnaround puts it now."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise not_found(f"batches/{job_id}")
        self._advance(job)
        return job

    def jobs(self) -> list[Job]:
        """Every job, newest first, each advanced."""
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)
        for job in jobs:
            self._advance(job)
        return jobs

    def cancel(self, job_id: str) -> None:
        """Cancel a job that has not ended (an ended job is left as it is)."""
        job = self.get(job_id)
        with self._lock:
            if job.state not in ENDED:
                job.state, job.ended = CANCELLED, self._clock()

    def delete(self, job_id: str) -> None:
        """Forget a job."""
        with self._lock:
            if self._jobs.pop(job_id, None) is None:
                raise not_found(f"batches/{job_id}")

    def _advance(self, job: Job) -> None:
        with self._lock:
            if job.state in ENDED:
                return
            age = self._clock() - job.created
            if age < self._turnaround_s:
                job.state = PENDING if age < self._turnaround_s / 2 else RUNNING
                return
            job.state = RUNNING  # claimed: a concurrent read waits below for the outcome
            if job.expires:
                job.state, job.ended = EXPIRED, self._clock()
                return
            self._finish(job)

    def _finish(self, job: Job) -> None:
        results = [self._run(job.model, line) for line in job.lines]
        self.lines_run += len(results)
        job.failed_lines = sum(1 for _, ok in results if not ok)
        if job.from_file:
            text = "".join(
                json.dumps({"key": line.key, **res}) + "\n"
                for line, (res, _) in zip(job.lines, results, strict=True)
            )
            stored = self._files.add_generated(
                text.encode(), f"{job.job_id}-output", "application/jsonl"
            )
            job.output = {"responsesFile": stored.name}
        else:
            items = [
                {**res, **({"metadata": line.metadata} if line.metadata else {})}
                for line, (res, _) in zip(job.lines, results, strict=True)
            ]
            job.output = {"inlinedResponses": {"inlinedResponses": items}}
        job.state, job.ended = SUCCEEDED, self._clock()

    def _run(self, model: str, line: Line) -> tuple[JsonDict, bool]:
        status, answer = self._run_line(model, json.dumps(line.request).encode())
        if status == 200:
            return {"response": answer}, True
        return {"error": answer.get("error", {"code": status, "message": "error"})}, False


def batch_resource(job: Job, *, with_inline: bool = True) -> JsonDict:
    """The GenerateContentBatch resource (an Operation's metadata)."""
    total = len(job.lines)
    done = job.state == SUCCEEDED
    stats = {
        "requestCount": str(total),
        "successfulRequestCount": str(total - job.failed_lines if done else 0),
        "failedRequestCount": str(job.failed_lines if done else 0),
        "pendingRequestCount": str(0 if job.state in ENDED else total),
    }
    body: JsonDict = {
        "@type": BATCH_TYPE,
        "name": f"batches/{job.job_id}",
        "model": f"models/{job.model}",
        "displayName": job.display_name,
        "createTime": rfc3339(job.created),
        "updateTime": rfc3339(job.ended or job.created),
        "batchStats": stats,
        "state": job.state,
    }
    if job.ended is not None:
        body["endTime"] = rfc3339(job.ended)
    if job.output and (with_inline or "responsesFile" in job.output):
        body["output"] = job.output
    return body


def operation(job: Job, *, with_inline: bool = True) -> JsonDict:
    """The long-running Operation a create, get or list returns for a job."""
    op: JsonDict = {
        "name": f"batches/{job.job_id}",
        "metadata": batch_resource(job, with_inline=with_inline),
        "done": job.state in ENDED,
    }
    if job.state == SUCCEEDED:
        op["response"] = {"@type": OUTPUT_TYPE, **(job.output if with_inline else {})}
    return op
