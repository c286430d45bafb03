"""S3 (or any S3-compatible store) through boto3. The client is created on first use, never at import."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from imagesearch import sigv4
from imagesearch.errors import (
    ImageSearchError,
    InvalidRequest,
    ObjectNotFound,
    StorageMisconfigured,
    StorageThrottled,
    StorageUnavailable,
)
from imagesearch.storage.base import MAX_KEY_BYTES, ObjectInfo, PresignedRequest

if TYPE_CHECKING:
    from botocore.exceptions import BotoCoreError, ClientError
    from mypy_boto3_s3 import S3Client

# Three attempts in all (botocore's "max_attempts" would count retries only: one attempt more). A store
# that is throttling fails a request after at most 1 + 2 s of backoff; one that accepts no connection, or
# accepts and never answers, after 3 x 2 s or 3 x 4 s: within the upload function's 15 s (botocore's
# defaults, 60 s per timeout, would wait minutes).
TOTAL_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 4

_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}
# What botocore's standard mode retries as throttling, and still failed after its retries.
_THROTTLING_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "BandwidthLimitExceeded",
}
# Passing faults of the store that S3 answers with a 4xx status (botocore retries them as well).
_TRANSIENT_CODES = {
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "OperationAborted",
}


class S3Storage:
    """Objects under `prefix` in `bucket`. Keys given to and returned by this class exclude the prefix."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: S3Client | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._endpoint_url = endpoint_url
        self._region = region
        self._client = client
        self._own_client = client is None
        self._lock = threading.Lock()

    @property
    def client(self) -> S3Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    self._client = boto3.client(
                        "s3",
                        endpoint_url=self._endpoint_url,
                        region_name=self._region,
                        # Virtual-host style breaks on most S3-compatible stores on localhost.
                        config=Config(
                            retries={"total_max_attempts": TOTAL_ATTEMPTS, "mode": "standard"},
                            connect_timeout=CONNECT_TIMEOUT_SECONDS,
                            read_timeout=READ_TIMEOUT_SECONDS,
                            signature_version="s3v4",
                            s3={"addressing_style": "path"} if self._endpoint_url else {},
                        ),
                    )
        return self._client

    def full_key(self, key: str) -> str:
        if not key or len((self.prefix + key).encode("utf-8")) > MAX_KEY_BYTES:
            raise InvalidRequest("object key must be 1 to 1024 bytes")
        return self.prefix + key

    def logical_key(self, full_key: str) -> str | None:
        """The key without this store's prefix, or None if the object lies outside it."""
        return full_key[len(self.prefix) :] if full_key.startswith(self.prefix) else None

    def key_from_event(self, bucket: str, key: str) -> str | None:
        return self.logical_key(key) if bucket == self.bucket else None

    def _call(self, key: str, operation: str, **params: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **params)
        except (ClientError, BotoCoreError) as e:
            raise self._error(operation, e, key=key) from e

    def _error(self, operation: str, e: ClientError | BotoCoreError, *, key: str = "") -> ImageSearchError:
        """The project's error for what boto3 raised (after its own retries), logged by kind: a passing
        fault as a warning, a store that refuses this deployment as an error (a configuration problem)."""
        from botocore.exceptions import (
            ClientError,
            NoCredentialsError,
            NoRegionError,
            PartialCredentialsError,
            ProfileNotFound,
        )

        from imagesearch.logs import logger  # here: Powertools imports botocore, which presigning avoids

        if isinstance(e, ClientError):
            code = str(e.response.get("Error", {}).get("Code", ""))
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        else:
            code, status = type(e).__name__, 0
        where = {"operation": operation, "bucket": self.bucket, "code": code, "status": status}
        if code in _NOT_FOUND_CODES:
            return ObjectNotFound(f"no object {key!r}")
        if code in _THROTTLING_CODES or status == 429:
            logger.warning("object storage is throttling requests", extra=where)
            return StorageThrottled(f"object storage is throttling requests ({operation}): retry later")
        no_setup = NoCredentialsError | PartialCredentialsError | NoRegionError | ProfileNotFound
        if isinstance(e, no_setup) or (300 <= status < 500 and code not in _TRANSIENT_CODES):
            # AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch, NoSuchBucket, a wrong region, a
            # request this store does not support (InvalidArgument), EntityTooLarge (the API's upload limit
            # is above the store's): the deployment's fault, not the caller's; a retry does not fix it.
            logger.error("object storage refused the request: a configuration problem", extra=where)
            return StorageMisconfigured(f"object storage refused {operation}: {code or status}")
        logger.warning("object storage unavailable", extra=where)
        return StorageUnavailable(f"object storage unavailable ({operation}): {code or status}")

    def put(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> ObjectInfo:
        response = self._call(
            key,
            "put_object",
            Key=self.full_key(key),
            Body=data,
            ContentType=content_type,
            Metadata=dict(metadata or {}),
        )
        return ObjectInfo(
            key=key,
            size=len(data),
            content_type=content_type,
            etag=str(response.get("ETag", "")).strip('"') or None,
            metadata=dict(metadata or {}),
            last_modified=datetime.now(UTC),
        )

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError

        response = self._call(key, "get_object", Key=self.full_key(key))
        try:
            return bytes(response["Body"].read())
        except BotoCoreError as e:
            raise self._error("get_object", e, key=key) from e

    def head(self, key: str) -> ObjectInfo:
        response = self._call(key, "head_object", Key=self.full_key(key))
        return ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            content_type=response.get("ContentType"),
            etag=str(response.get("ETag", "")).strip('"') or None,
            metadata=dict(response.get("Metadata") or {}),
            last_modified=response.get("LastModified"),
        )

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        self._call(key, "delete_object", Key=self.full_key(key))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    key = self.logical_key(item["Key"])
                    if key is not None:
                        yield ObjectInfo(
                            key=key,
                            size=int(item["Size"]),
                            etag=str(item.get("ETag", "")).strip('"') or None,
                            last_modified=item.get("LastModified"),
                        )
        except (ClientError, BotoCoreError) as e:
            raise self._error("list_objects_v2", e) from e

    def presigned_get(self, key: str, *, expires_in: int) -> str:
        # Without botocore where the result is the same (credentials and region from the environment, as in
        # Lambda): a cold search then never imports boto3 (~0.25 s).
        url = self._presign_get_locally(key, expires_in)
        if url is not None:
            return url
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.full_key(key)}, ExpiresIn=expires_in
        )

    def _presign_get_locally(self, key: str, expires_in: int) -> str | None:
        if not self._own_client:
            return None
        endpoint = self._endpoint_url
        if endpoint is None and sigv4.environment_endpoint() is not None:
            return None  # botocore would pick it up, with its own addressing style
        credentials = sigv4.current_credentials()
        region = self._region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if credentials is None or not region:
            return None
        return sigv4.presign_get(
            self.bucket,
            self.full_key(key),
            region=region,
            credentials=credentials,
            expires_in=expires_in,
            endpoint_url=endpoint,
        )

    def presigned_put(self, key: str, *, content_type: str, size: int, expires_in: int) -> PresignedRequest:
        # Content-Type and Content-Length are signed: S3 refuses a body of another type or size.
        url = self.client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.full_key(key),
                "ContentType": content_type,
                "ContentLength": size,
            },
            ExpiresIn=expires_in,
        )
        return PresignedRequest(
            url=url,
            method="PUT",
            headers={"Content-Type": content_type},
            expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
        )
