"""The images API as a client sees it: uploads (small ones in one POST, large ones straight to storage)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any, TypeVar

import httpx

from imagesearch.client.retry import with_retries


class UploadOutcome(StrEnum):
    ADDED = "added"
    SKIPPED = "skipped"  # the API already has these bytes
    REJECTED = "rejected"  # the API refused the file (not an image, too large, ...)
    ERROR = "error"  # could not be sent (network, server down after retries)


@dataclass(frozen=True)
class Uploaded:
    outcome: UploadOutcome
    detail: str  # the image id, or why it is not there


class ApiClient:
    """One API base URL, its credentials, and retries with backoff on every request."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One API request, retried on 429/5xx and connection errors."""
        return with_retries(lambda: self.http.request(method, url, **kwargs))

    def find_by_sha256(self, sha256: str) -> str | None:
        """The id of this tenant's image with these bytes (pending ones included), if any."""
        response = self.request("GET", "/images", params={"sha256": sha256, "limit": 1})
        if response.status_code == 200 and response.json()["items"]:
            return str(response.json()["items"][0]["id"])
        return None

    def upload(self, filename: str, data: bytes, *, fields: Mapping[str, object] | None = None) -> Uploaded:
        """POST /images (bytes and form fields in one request: up to Lambda's payload limit)."""
        files = {"file": (filename, data, "application/octet-stream")}
        return self._sent(lambda: outcome_of(self.request("POST", "/images", files=files, data=fields)))

    def upload_direct(self, announcement: Mapping[str, object], data: bytes) -> Uploaded:
        """POST /uploads with `announcement` (filename, content_type, size...), then PUT the bytes to the
        presigned URL it answers with: for files of any size."""

        def send() -> Uploaded:
            announced = self.request("POST", "/uploads", json=dict(announcement))
            if announced.status_code != 201:
                return outcome_of(announced)
            body = announced.json()
            put = with_retries(
                lambda: httpx.request(
                    "PUT",
                    body["upload_url"],
                    content=data,
                    headers=body["headers"],
                    timeout=self.http.timeout,
                )
            )
            if put.status_code >= 400:
                return Uploaded(UploadOutcome.ERROR, f"upload to storage failed with {put.status_code}")
            return Uploaded(UploadOutcome.ADDED, str(body["id"]))

        return self._sent(send)

    @staticmethod
    def _sent(send: Callable[[], Uploaded]) -> Uploaded:
        try:
            return send()
        except httpx.HTTPError as e:
            return Uploaded(UploadOutcome.ERROR, f"{type(e).__name__}: {e}")


def outcome_of(response: httpx.Response) -> Uploaded:
    """201: added; 200: the API had these bytes; 4xx: refused, with the problem's detail; else an error."""
    if response.status_code == 201:
        return Uploaded(UploadOutcome.ADDED, str(response.json()["id"]))
    if response.status_code == 200:
        return Uploaded(UploadOutcome.SKIPPED, str(response.json()["id"]))
    if 400 <= response.status_code < 500:
        try:
            return Uploaded(UploadOutcome.REJECTED, str(response.json().get("detail", response.text)))
        except ValueError:
            return Uploaded(UploadOutcome.REJECTED, response.text[:200])
    return Uploaded(UploadOutcome.ERROR, f"HTTP {response.status_code}")


Item = TypeVar("Item", bound=Hashable)


def upload_all(
    items: Iterable[Item],
    upload: Callable[[Item], Uploaded],
    *,
    concurrency: int,
    progress: Callable[[Item, UploadOutcome], object] | None = None,
) -> dict[Item, Uploaded]:
    """`upload(item)` for every item with at most `concurrency` in flight; `progress` as each one ends."""
    results: dict[Item, Uploaded] = {}
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = {pool.submit(upload, item): item for item in items}
        for future in as_completed(futures):
            item = futures[future]
            results[item] = future.result()
            if progress is not None:
                progress(item, results[item].outcome)
    return results
