"""The S3 object store: the only module that imports boto3 or botocore."""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import EditQueueError, ObjectNotFound, StorageUnavailable
from shared.keys import blob_sha256_of, safe_key, safe_prefix
from shared.metrics import record_s3_request

# botocore counts `max_attempts` as retries after the first request: 6 requests in total.
MAX_RETRIES = 5
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
MAX_POOL_CONNECTIONS = 32
DEFAULT_PAGE_SIZE = 1000
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
DEFAULT_PRESIGN_EXPIRES_S = 3600
CONFLICT_ATTEMPTS = 4
CONFLICT_BACKOFF_S = 0.05
# A start-up probe tries once, briefly: an unreachable store is reported, not waited for.
PROBE_TIMEOUT_S = 3.0

_MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
_PutOutcome = Literal["created", "exists", "conflict"]


def client_config(endpoint_url: str | None) -> Config:
    """Retries, timeouts and addressing for an S3 client (path style for custom endpoints)."""
    return Config(
        retries={"max_attempts": MAX_RETRIES, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        max_pool_connections=MAX_POOL_CONNECTIONS,
        signature_version="s3v4",  # presigned URLs too; SigV2 is refused by newer regions
        # Every PUT names its body's SHA-256 (`x-amz-checksum-sha256`, see `body_checksum`),
        # which the store checks, so SigV4 need not hash the body once more (it did on every
        # http request, and on https too without a Content-MD5): 1 ms per 2 MB image.
        s3={"payload_signing_enabled": False}
        | ({"addressing_style": "path"} if endpoint_url else {}),
        # No CRC32 of every body in Python: blobs are named and checked by their SHA-256, and
        # botocore's default (when_supported) checksummed each multi-MB image once more.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def body_checksum(key: str, data: bytes) -> str:
    """The base64 SHA-256 of a PUT's body, sent as `x-amz-checksum-sha256`. A blob's key is
    already its SHA-256 (`blobs/sha256/<hex>`), so only the small JSON objects are hashed here.

    Amazon S3 documents that it checks the value against the body and refuses a mismatch
    (BadDigest; User Guide, "Checking object integrity"); MinIO and R2 do the same (third-party
    reports). moto stores the object without checking: measured, so tests assert what is sent.
    """
    named = blob_sha256_of(key)
    digest = bytes.fromhex(named) if named else hashlib.sha256(data).digest()
    return base64.b64encode(digest).decode()


def _code_and_status(exc: Any) -> tuple[str, int | None]:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(error.get("Code", "")), status if isinstance(status, int) else None


def _translate(exc: Exception, what: str) -> EditQueueError:
    if not isinstance(exc, ClientError):
        return StorageUnavailable(f"{what}: S3 unreachable ({type(exc).__name__}: {exc})")
    code, status = _code_and_status(exc)
    if code in _MISSING_CODES:
        return ObjectNotFound(f"{what}: object does not exist", status=404)
    if code == "NoSuchBucket":
        hint = "create it or fix EDITQUEUE_STORE_URL"
        return StorageUnavailable(f"{what}: bucket does not exist ({hint})", status=status)
    return StorageUnavailable(f"{what}: S3 answered {status} {code}".rstrip(), status=status)


@contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise _translate(exc, what) from exc


def _count_request(model: Any, **_: Any) -> None:
    """botocore's before-call event: one count per S3 operation (GetObject, PutObject ...)."""
    record_s3_request(str(getattr(model, "name", "unknown")))


class S3Store:
    """Objects under `prefix` in one bucket; credentials come from the standard AWS_* chain."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        endpoint_url: str | None = None,
        client: Any = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        self.bucket = bucket
        stripped = prefix.strip("/")
        self.prefix = f"{stripped}/" if stripped else ""
        self.page_size = page_size
        self._endpoint_url = endpoint_url
        self._own_client = client is None
        if client is None:
            with _s3_errors("creating the S3 client"):
                session = boto3.session.Session()
                config = client_config(endpoint_url)
                client = session.client("s3", endpoint_url=endpoint_url, config=config)
            client.meta.events.register("before-call.s3", _count_request)
        self._client = client

    def __repr__(self) -> str:
        return f"S3Store('s3://{self.bucket}/{self.prefix}')"

    @property
    def client(self) -> Any:
        """The underlying boto3 client (for tests and tooling; callers use the methods)."""
        return self._client

    def _full(self, key: str) -> str:
        return self.prefix + safe_key(key)

    def get(self, key: str) -> bytes:
        """The object's bytes; raises ObjectNotFound."""
        with _s3_errors(f"reading {key}"):
            response = self._client.get_object(Bucket=self.bucket, Key=self._full(key))
            return bytes(response["Body"].read())

    def put(self, key: str, data: bytes) -> None:
        """Write or replace the object."""
        with _s3_errors(f"writing {key}"):
            self._client.put_object(
                Bucket=self.bucket,
                Key=self._full(key),
                Body=data,
                ChecksumSHA256=body_checksum(key, data),
            )

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create the object with `If-None-Match: *`; True when this call created it."""
        full = self._full(key)
        for attempt in range(CONFLICT_ATTEMPTS):
            outcome = self._conditional_put(key, full, data)
            if outcome != "conflict":
                return outcome == "created"
            # 409: another conditional write to this key was in flight; if it landed, we lost.
            if self.exists(key):
                return False
            time.sleep(CONFLICT_BACKOFF_S * (attempt + 1))
        raise StorageUnavailable(f"writing {key}: conditional write kept conflicting", status=409)

    def _conditional_put(self, key: str, full: str, data: bytes) -> _PutOutcome:
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=full,
                Body=data,
                IfNoneMatch="*",
                ChecksumSHA256=body_checksum(key, data),
            )
            return "created"
        except ClientError as exc:
            code, status = _code_and_status(exc)
            if status == 412 or code == "PreconditionFailed":
                return "exists"
            if status == 409 or code == "ConditionalRequestConflict":
                return "conflict"
            raise _translate(exc, f"writing {key}") from exc
        except BotoCoreError as exc:
            raise _translate(exc, f"writing {key}") from exc

    def exists(self, key: str) -> bool:
        """True when the object exists."""
        try:
            with _s3_errors(f"checking {key}"):
                self._client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ObjectNotFound:
            return False
        return True

    def list(self, prefix: str) -> Iterator[str]:
        """Every key that starts with `prefix`, in lexical order, relative to the store prefix."""
        for key, _ in self.list_tagged(prefix):
            yield key

    def list_tagged(self, prefix: str) -> Iterator[tuple[str, str]]:
        """(key, ETag without quotes) of every key under `prefix`, in lexical order."""
        full = self.prefix + safe_prefix(prefix)
        with _s3_errors(f"listing {prefix or '(all)'}"):
            paginator = self._client.get_paginator("list_objects_v2")
            config = {"PageSize": self.page_size}
            for page in paginator.paginate(
                Bucket=self.bucket, Prefix=full, PaginationConfig=config
            ):
                for item in page.get("Contents", []):
                    yield str(item["Key"])[len(self.prefix) :], str(item.get("ETag", "")).strip('"')

    def delete(self, key: str) -> None:
        """Remove the object if present."""
        with _s3_errors(f"deleting {key}"):
            self._client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def download_to(self, key: str, path: Path) -> None:
        """Stream the object into a temp file beside `path`, then rename it into place."""
        full = self._full(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle, _s3_errors(f"downloading {key}"):
                response = self._client.get_object(Bucket=self.bucket, Key=full)
                for chunk in response["Body"].iter_chunks(DOWNLOAD_CHUNK_BYTES):
                    handle.write(chunk)
            os.replace(name, path)
        finally:
            Path(name).unlink(missing_ok=True)

    def presigned_url(
        self, key: str, expires_s: int = DEFAULT_PRESIGN_EXPIRES_S, *, content_type: str = ""
    ) -> str:
        """A time-limited GET URL for the object (no credentials needed to use it)."""
        with _s3_errors(f"presigning {key}"):
            params = {"Bucket": self.bucket, "Key": self._full(key)}
            if content_type:  # S3 answers with this Content-Type instead of the stored one
                params["ResponseContentType"] = content_type
            url = self._client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires_s
            )
            return str(url)

    def _probe_client(self) -> Any:
        if not self._own_client:
            return self._client
        config = client_config(self._endpoint_url).merge(
            Config(
                retries={"total_max_attempts": 1},
                connect_timeout=PROBE_TIMEOUT_S,
                read_timeout=PROBE_TIMEOUT_S,
            )
        )
        with _s3_errors("creating the S3 client"):
            return boto3.session.Session().client(
                "s3", endpoint_url=self._endpoint_url, config=config
            )

    def bucket_exists(self) -> bool:
        """One quick HEAD of the bucket: True when it exists, False when S3 says it does not."""
        try:
            self._probe_client().head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code, status = _code_and_status(exc)
            if status == 404 or code in _MISSING_CODES | {"NoSuchBucket"}:
                return False
            raise _translate(exc, f"checking bucket {self.bucket}") from exc
        except BotoCoreError as exc:
            raise _translate(exc, f"checking bucket {self.bucket}") from exc
        return True

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet (tests and the demo setup)."""
        try:
            with _s3_errors(f"checking bucket {self.bucket}"):
                self._client.head_bucket(Bucket=self.bucket)
            return
        except ObjectNotFound:
            pass
        except StorageUnavailable as exc:
            if exc.status != 404:
                raise
        self._create_bucket()

    def _create_bucket(self) -> None:
        region = self._client.meta.region_name
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._client.create_bucket(**kwargs)
        except ClientError as exc:
            code, _ = _code_and_status(exc)
            if code != "BucketAlreadyOwnedByYou":  # lost a creation race with ourselves
                raise _translate(exc, f"creating bucket {self.bucket}") from exc
        except BotoCoreError as exc:
            raise _translate(exc, f"creating bucket {self.bucket}") from exc
