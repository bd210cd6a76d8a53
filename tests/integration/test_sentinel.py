"""Redis Sentinel: a primary, a replica and `redis-server --sentinel` (Debian's redis-server
package); workers and the producer reach Redis only through `EDITQUEUE_BROKER_URL=sentinel://`.
The Sentinel fails the primary over while a small batch runs, then the old primary is killed:
every turn is committed once, so the broker and the coordination client followed the master.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import redis

from tests.integration.services import (
    Proc,
    Stack,
    free_port,
    spawn,
    start_emulator,
    wait_until,
)
from tests.integration.test_faults import s3_client

pytestmark = pytest.mark.integration

MASTER = "eqmaster"
SESSIONS, TURNS = 4, 3


def start_redis(workdir: Path, *extra: str) -> tuple[Proc, int]:
    port = free_port()
    binary = shutil.which("redis-server") or "redis-server"
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)]
    args += extra  # (a replica's full sync writes its RDB file into --dir)
    proc = spawn([*args, "--appendonly", "no"], workdir / f"redis-{port}.log")
    wait_until(lambda: redis.Redis(port=port).ping(), 10, f"redis on {port}")
    return proc, port


def start_sentinel(workdir: Path, primary: int) -> tuple[Proc, int]:
    port = free_port()
    conf = workdir / f"sentinel-{port}.conf"  # the Sentinel rewrites its own config file
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {primary} 1\n"
        f"sentinel down-after-milliseconds {MASTER} 1000\n"
        f"sentinel failover-timeout {MASTER} 10000\n"
    )
    binary = shutil.which("redis-server") or "redis-server"
    proc = spawn([binary, str(conf), "--sentinel"], workdir / f"sentinel-{port}.log")
    wait_until(lambda: master_port(port) == primary, 10, "sentinel")
    return proc, port


def master_port(sentinel: int) -> int:
    _, port = redis.Redis(port=sentinel).execute_command(
        "SENTINEL", "get-master-addr-by-name", MASTER
    )
    return int(port)


def replicated(primary: int) -> bool:
    info = redis.Redis(port=primary).info("replication")
    return bool(info.get("connected_slaves")) and info.get("slave0", {}).get("state") == "online"


def committed_turns(stack: Stack, sids: list[str]) -> int:
    out = stack.cli("status", *sids, "--json")
    docs = json.loads(out.stdout)
    return sum(t["state"] == "succeeded" for d in docs for t in d["turns"])


def test_a_failover_during_a_batch_loses_no_turn_and_commits_each_once(
    stack: Stack, tmp_path: Path
) -> None:
    emulator, emulator_url = start_emulator(tmp_path, "--latency-s", "1.5")  # turns in flight
    primary, primary_port = start_redis(tmp_path)
    replica, replica_port = start_redis(tmp_path)
    redis.Redis(port=replica_port).execute_command("REPLICAOF", "127.0.0.1", primary_port)
    wait_until(lambda: replicated(primary_port), 10, "replica in sync")
    sentinel, sentinel_port = start_sentinel(tmp_path, primary_port)
    stack.extra_env.update(
        EDITQUEUE_BROKER_URL=f"sentinel://127.0.0.1:{sentinel_port}/0",
        EDITQUEUE_SENTINEL_MASTER=MASTER,
        EDITQUEUE_API_BASE_URL=emulator_url,
    )
    try:
        stack.start_worker("--concurrency", "4")
        stack.start_worker("--concurrency", "4")
        spec = tmp_path / "batch.jsonl"
        turns = [{"prompt": f"step {n}"} for n in range(TURNS)]
        spec.write_text((json.dumps({"image_size": "512", "turns": turns}) + "\n") * SESSIONS)
        out = stack.cli("submit", str(spec))
        assert out.returncode == 0, out.stderr
        sids = out.stdout.split()
        wait_until(lambda: committed_turns(stack, sids) >= 1, 60, "a first commit")

        before = committed_turns(stack, sids)
        redis.Redis(port=sentinel_port).execute_command("SENTINEL", "FAILOVER", MASTER)
        wait_until(lambda: master_port(sentinel_port) == replica_port, 30, "the failover")
        failed_over_at = time.monotonic()
        primary.kill()  # whoever still talked to the old primary now fails

        total = SESSIONS * TURNS
        wait_until(lambda: committed_turns(stack, sids) == total, 120, "every turn committed")
        after_s = time.monotonic() - failed_over_at
        docs = json.loads(stack.cli("status", *sids, "--json").stdout)
    finally:
        stack.stop()
        for proc in (sentinel, replica, primary, emulator):
            proc.kill()

    assert before < total, "the failover came after the batch"
    assert after_s < 120
    assert {d["state"] for d in docs} == {"completed"}
    assert result_keys(stack) == total  # once each: a second commit of a turn is a 412


def result_keys(stack: Stack) -> int:
    s3 = s3_client(stack.s3_url)
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=stack.bucket, Prefix=f"{stack.prefix}/sessions/"
    ):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith("/result.json")]
    return len(keys)
