"""The official google-genai SDK's Files and Batch calls work unchanged against the emulator."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import pytest
from google import genai
from google.genai import errors, types

from emulator import EmulatorConfig, RunningEmulator, start_emulator
from tests.emulator.helpers import NB2, lineage

TURNAROUND_S = 0.6


@pytest.fixture(scope="module")
def batch_emulator() -> Iterator[RunningEmulator]:
    """An emulator whose batch jobs end 0.6 s after creation; the second job created expires."""
    with start_emulator(EmulatorConfig(seed=11, batch_turnaround_s=TURNAROUND_S)) as running:
        yield running


def client_for(emulator: RunningEmulator) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=emulator.url))


def wait_done(client: genai.Client, name: str) -> types.BatchJob:
    deadline = time.monotonic() + 10
    while True:
        job = client.batches.get(name=name)
        if job.done or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def image_of(response: types.GenerateContentResponse) -> bytes:
    assert response.candidates and response.candidates[0].content
    parts = response.candidates[0].content.parts or []
    return next(p.inline_data.data for p in parts if p.inline_data and p.inline_data.data)


def test_an_inline_job_goes_pending_then_succeeds_with_responses_in_input_order(
    batch_emulator: RunningEmulator,
) -> None:
    client = client_for(batch_emulator)
    config = {"image_config": {"aspect_ratio": "16:9", "image_size": "1K"}}
    src = [
        {"contents": [{"role": "user", "parts": [{"text": f"room {n}"}]}], "config": config}
        for n in range(3)
    ]
    job = client.batches.create(model=NB2, src=src, config={"display_name": "wave-inline"})

    assert job.name and job.name.startswith("batches/")
    assert job.state == types.JobState.JOB_STATE_PENDING and job.display_name == "wave-inline"
    done = wait_done(client, job.name)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    assert done.dest is not None and done.dest.inlined_responses
    responses = [r.response for r in done.dest.inlined_responses]
    assert all(r is not None for r in responses)
    assert [lineage(image_of(r))[0] for r in responses if r] == [1, 1, 1]
    assert batch_emulator.stats()["total_calls"] == 0  # no generateContent call was made


def test_a_file_job_uploads_jsonl_and_downloads_keyed_results_with_a_failed_line(
    batch_emulator: RunningEmulator,
) -> None:
    client = client_for(batch_emulator)
    lines = [
        {"key": "s1:1:1", "request": {"contents": [{"role": "user", "parts": [{"text": "a"}]}]}},
        {
            "key": "s2:1:1",
            "request": {"contents": [{"role": "user", "parts": [{"text": "b !fault=400"}]}]},
        },
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uploaded = client.files.upload(
        file=io.BytesIO(data), config={"mime_type": "application/jsonl", "display_name": "w1"}
    )
    assert uploaded.name and uploaded.size_bytes == len(data)
    assert client.files.get(name=uploaded.name).state == types.FileState.ACTIVE

    job = client.batches.create(model=NB2, src=uploaded.name)
    done = wait_done(client, job.name or "")

    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    assert done.dest is not None and done.dest.file_name
    output = client.files.download(file=done.dest.file_name)
    results = {r["key"]: r for r in map(json.loads, output.decode().splitlines())}
    assert set(results) == {"s1:1:1", "s2:1:1"}
    parts = results["s1:1:1"]["response"]["candidates"][0]["content"]["parts"]
    assert any("inlineData" in p and p.get("thoughtSignature") for p in parts)
    assert results["s2:1:1"]["error"]["code"] == 400


def test_cancel_list_and_delete_through_the_sdk(batch_emulator: RunningEmulator) -> None:
    client = client_for(batch_emulator)
    src = [{"contents": [{"role": "user", "parts": [{"text": "x"}]}]}]
    job = client.batches.create(model=NB2, src=src)
    assert job.name

    client.batches.cancel(name=job.name)

    assert client.batches.get(name=job.name).state == types.JobState.JOB_STATE_CANCELLED
    listed = [j.name for j in client.batches.list(config={"page_size": 2})]
    assert job.name in listed
    client.batches.delete(name=job.name)
    with pytest.raises(errors.ClientError) as caught:
        client.batches.get(name=job.name)
    assert caught.value.code == 404


def test_the_expiry_fault_ends_a_job_expired_without_results() -> None:
    config = EmulatorConfig(batch_turnaround_s=0.2, batch_expire_jobs=1)
    with start_emulator(config) as running:
        client = client_for(running)
        src = [{"contents": [{"role": "user", "parts": [{"text": "x"}]}]}]
        first = client.batches.create(model=NB2, src=src)
        second = client.batches.create(model=NB2, src=src)
        expired = wait_done(client, first.name or "")
        succeeded = wait_done(client, second.name or "")
    assert expired.state == types.JobState.JOB_STATE_EXPIRED and expired.dest is None
    assert succeeded.state == types.JobState.JOB_STATE_SUCCEEDED
