"""The project's own exceptions. Adapters raise these; one place (http.problems) maps them to HTTP."""

from __future__ import annotations


class ImageSearchError(Exception):
    """Base class; `detail` is safe to show to the caller."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# --- the caller's fault (4xx) ---
class InvalidRequest(ImageSearchError):
    """Well-formed HTTP, but the values make no sense (422)."""


class MalformedEvent(ImageSearchError):
    """A delivered event that is not one the embed function handles, or not well-formed (400): retrying
    cannot help, so a push subscription sends it to its dead-letter sink."""


class NotFound(ImageSearchError):
    """No such resource for this caller (404; also used for other tenants' resources)."""


class Unauthorized(ImageSearchError):
    """Missing, malformed, revoked or unknown credentials (401)."""


class PayloadTooLarge(ImageSearchError):
    """Body or image over a configured limit (413)."""


class ImageRejected(ImageSearchError):
    """Bytes that are not a supported, decodable image within the limits (415).

    `reason` is a short machine-readable code (e.g. "truncated", "too_many_pixels", "unsupported_format").
    """

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail)
        self.reason = reason


class TooManyPixels(ImageRejected):
    """A decompression bomb or simply a picture over the pixel limit (413)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, reason="too_many_pixels")


class Conflict(ImageSearchError):
    """The request conflicts with the resource's state (409)."""


class TooManyRequests(ImageSearchError):
    """The caller's tenant is over its rate limit (429); `retry_after` seconds until it may send again."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


# --- not the caller's fault, but expected and temporary (503) ---
class ServiceUnavailable(ImageSearchError):
    """A dependency is down; retrying later should work (after `retry_after` seconds, the 503's header)."""

    retry_after: int = 1


class DatabaseUnavailable(ServiceUnavailable):
    """PostgreSQL cannot be reached or dropped the connection."""


class SchemaOutdated(DatabaseUnavailable):
    """The database's schema is older than this code needs: a deploy ran before its migration (or without)."""

    retry_after = 30


class StorageUnavailable(ServiceUnavailable):
    """Object storage cannot be reached, answered with a server error, or cannot write (disk full)."""


class StorageThrottled(StorageUnavailable):
    """Object storage asks for fewer requests (S3 SlowDown) even after the client's own retries."""

    retry_after = 5


class StorageMisconfigured(StorageUnavailable):
    """Object storage refuses the deployment itself (credentials, permissions, bucket, region): the caller
    still gets a 503, since it is not their fault, but an operator has to act, so it is logged as an error."""

    retry_after = 30


# --- configuration ---
class ModelUnavailable(ServiceUnavailable):
    """The model bundle is missing, corrupt or does not match its manifest."""


class ObjectNotFound(ImageSearchError):
    """No object at that key in object storage."""
