"""`imagesearch ingest`: upload a folder to a running API, with bounded concurrency and resume.

Each file is hashed first; a file whose bytes the API already holds (GET /images?sha256=) is skipped without
being sent, so an interrupted run resumes where it stopped. Small files go through POST /images; larger
ones through POST /uploads and a PUT to the presigned URL (Lambda's payload limit is 6 MB).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx

from imagesearch.http.retry import with_retries
from imagesearch.images.service import CONTENT_TYPES
from imagesearch.imaging import sniff_format

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif", ".heic", ".heif"}
)
DIRECT_UPLOAD_LIMIT = 5 * 1024 * 1024


class FileOutcome(StrEnum):
    ADDED = "added"
    SKIPPED = "skipped"  # the API already has these bytes
    REJECTED = "rejected"  # the API refused the file (not an image, too large, ...)
    ERROR = "error"  # could not be sent (network, server down after retries)


@dataclass
class BulkResult:
    files: dict[FileOutcome, list[tuple[Path, str]]] = field(
        default_factory=lambda: {outcome: [] for outcome in FileOutcome}
    )

    def add(self, path: Path, outcome: FileOutcome, detail: str = "") -> None:
        self.files[outcome].append((path, detail))

    def count(self, outcome: FileOutcome) -> int:
        return len(self.files[outcome])


def collect_files(paths: Iterable[Path], *, recursive: bool) -> list[Path]:
    """Image files named directly, or found in the given folders (by suffix), sorted and de-duplicated."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            candidates = path.rglob("*") if recursive else path.glob("*")
            found.update(p for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.add(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return sorted(found)


class BulkUploader:
    """Uploads files to `base_url` with at most `concurrency` requests in flight."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        tags: Sequence[str] = (),
        concurrency: int = 4,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)
        self.tags = list(tags)
        self.concurrency = concurrency

    def run(
        self, files: Sequence[Path], progress: Callable[[Path, FileOutcome], object] | None = None
    ) -> BulkResult:
        result = BulkResult()
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self.upload_one, path): path for path in files}
            for future in as_completed(futures):
                path = futures[future]
                outcome, detail = future.result()
                result.add(path, outcome, detail)
                if progress is not None:
                    progress(path, outcome)
        return result

    def upload_one(self, path: Path) -> tuple[FileOutcome, str]:
        try:
            data = path.read_bytes()
        except OSError as e:
            return FileOutcome.ERROR, str(e)
        sha256 = hashlib.sha256(data).hexdigest()
        try:  # resume: bytes the API has (or is still embedding, for direct uploads) are not sent again
            existing = self._request("GET", "/images", params={"sha256": sha256, "limit": 1})
            if existing.status_code == 200 and existing.json()["items"]:
                return FileOutcome.SKIPPED, existing.json()["items"][0]["id"]
            if len(data) <= DIRECT_UPLOAD_LIMIT:
                return self._direct(path, data)
            return self._presigned(path, data)
        except httpx.HTTPError as e:
            return FileOutcome.ERROR, f"{type(e).__name__}: {e}"

    def _direct(self, path: Path, data: bytes) -> tuple[FileOutcome, str]:
        response = self._request(
            "POST",
            "/images",
            files={"file": (path.name, data, "application/octet-stream")},
            data={"tags": self.tags} if self.tags else None,
        )
        return self._outcome(response)

    def _presigned(self, path: Path, data: bytes) -> tuple[FileOutcome, str]:
        fmt = sniff_format(data)
        if fmt is None:
            return FileOutcome.REJECTED, "not a supported image format"
        announced = self._request(
            "POST",
            "/uploads",
            json={
                "filename": path.name,
                "content_type": CONTENT_TYPES[fmt],
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "tags": self.tags,
            },
        )
        if announced.status_code != 201:
            return self._outcome(announced)
        body = announced.json()
        put = self._request("PUT", body["upload_url"], content=data, headers=body["headers"], absolute=True)
        if put.status_code >= 400:
            return FileOutcome.ERROR, f"upload to storage failed with {put.status_code}"
        return FileOutcome.ADDED, body["id"]

    @staticmethod
    def _outcome(response: httpx.Response) -> tuple[FileOutcome, str]:
        if response.status_code == 201:
            return FileOutcome.ADDED, response.json()["id"]
        if response.status_code == 200:
            return FileOutcome.SKIPPED, response.json()["id"]
        if 400 <= response.status_code < 500:
            try:
                return FileOutcome.REJECTED, str(response.json().get("detail", response.text))
            except ValueError:
                return FileOutcome.REJECTED, response.text[:200]
        return FileOutcome.ERROR, f"HTTP {response.status_code}"

    def _request(self, method: str, url: str, *, absolute: bool = False, **kwargs: Any) -> httpx.Response:
        """One request, retried with backoff on 429/5xx and connection errors."""
        if absolute:  # a presigned storage URL, not the API
            return with_retries(lambda: httpx.request(method, url, timeout=self.client.timeout, **kwargs))
        return with_retries(lambda: self.client.request(method, url, **kwargs))
