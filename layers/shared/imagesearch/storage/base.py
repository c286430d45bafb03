"""The object storage interface the rest of the code relies on."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from imagesearch.errors import InvalidRequest

MAX_KEY_BYTES = 1024  # S3's limit


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None = None
    etag: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    last_modified: datetime | None = None


@dataclass(frozen=True)
class PresignedRequest:
    """What a client needs to send the bytes straight to storage."""

    url: str
    method: str
    headers: Mapping[str, str]
    expires_at: datetime


class ObjectStorage(Protocol):
    """Put, get, delete objects by key; hand out short-lived URLs for direct transfer."""

    def put(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> ObjectInfo: ...

    def get(self, key: str) -> bytes: ...

    def head(self, key: str) -> ObjectInfo: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    def presigned_get(self, key: str, *, expires_in: int) -> str: ...

    def key_from_event(self, bucket: str, key: str) -> str | None:
        """The key as this adapter names it, for an event about `bucket`/`key`; None if not this store's."""
        ...

    def presigned_put(
        self,
        key: str,
        *,
        content_type: str,
        size: int,
        expires_in: int,
    ) -> PresignedRequest: ...


def check_key(key: str) -> str:
    """Refuse keys that could escape a directory or that S3 would refuse; return the key unchanged."""
    if not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidRequest("object key must be 1 to 1024 bytes")
    if "\x00" in key or "\\" in key or key.startswith("/"):
        raise InvalidRequest("object key contains a forbidden character")
    for part in key.split("/"):
        if part in ("", ".", "..") or part.startswith("."):
            raise InvalidRequest("object key has an empty, relative or hidden path segment")
    return key
