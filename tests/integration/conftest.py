"""Session-wide real services; each test gets a fresh Redis, its own S3 prefix and workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import redis

from tests.conftest import need
from tests.integration.services import Stack, start_emulator, start_moto, start_redis

BUCKET = "editqueue-test"


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def redis_port(services_dir: Path) -> Iterator[int]:
    started = start_redis(services_dir)
    need(started is not None, "redis-server is not installed (apt-get install redis-server)")
    assert started is not None
    proc, port = started
    yield port
    proc.kill()


@pytest.fixture(scope="session")
def s3_url(services_dir: Path) -> Iterator[str]:
    proc, url = start_moto(services_dir)
    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=BUCKET)
    yield url
    proc.kill()


@pytest.fixture(scope="session")
def emulator_url(services_dir: Path) -> Iterator[str]:
    proc, url = start_emulator(services_dir, "--latency-s", "0.2", "--seed", "7")
    yield url
    proc.kill()


@pytest.fixture
def stack(tmp_path: Path, redis_port: int, s3_url: str, emulator_url: str) -> Iterator[Stack]:
    redis.Redis(port=redis_port).flushall()
    result = Stack(tmp_path, redis_port, s3_url, emulator_url, BUCKET)
    yield result
    result.stop()
