"""`imagesearch ingest`: upload a folder to a running API, with bounded concurrency and resume.

Each file is hashed first; a file whose bytes the API already holds (GET /images?sha256=) is skipped without
being sent, so an interrupted run resumes where it stopped. Small files go through POST /images; larger
ones through POST /uploads and a PUT to the presigned URL (Lambda's payload limit is 6 MB).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from imagesearch.client.api import ApiClient, Uploaded, UploadOutcome, upload_all
from imagesearch.imaging import CONTENT_TYPES, sniff_format

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif", ".heic", ".heif"}
)
DIRECT_UPLOAD_LIMIT = 5 * 1024 * 1024


@dataclass
class BulkResult:
    files: dict[UploadOutcome, list[tuple[Path, str]]] = field(
        default_factory=lambda: {outcome: [] for outcome in UploadOutcome}
    )

    def count(self, outcome: UploadOutcome) -> int:
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
        self.client = ApiClient(base_url, api_key=api_key, timeout=timeout, transport=transport)
        self.tags = list(tags)
        self.concurrency = concurrency

    def run(
        self, files: Sequence[Path], progress: Callable[[Path, UploadOutcome], object] | None = None
    ) -> BulkResult:
        result = BulkResult()
        uploaded = upload_all(files, self.upload_one, concurrency=self.concurrency, progress=progress)
        for path, done in uploaded.items():
            result.files[done.outcome].append((path, done.detail))
        return result

    def upload_one(self, path: Path) -> Uploaded:
        try:
            data = path.read_bytes()
        except OSError as e:
            return Uploaded(UploadOutcome.ERROR, str(e))
        sha256 = hashlib.sha256(data).hexdigest()
        try:  # resume: bytes the API has (or is still embedding, for direct uploads) are not sent again
            existing = self.client.find_by_sha256(sha256)
        except httpx.HTTPError as e:
            return Uploaded(UploadOutcome.ERROR, f"{type(e).__name__}: {e}")
        if existing is not None:
            return Uploaded(UploadOutcome.SKIPPED, existing)
        if len(data) <= DIRECT_UPLOAD_LIMIT:
            return self.client.upload(path.name, data, fields={"tags": self.tags} if self.tags else None)
        fmt = sniff_format(data)
        if fmt is None:
            return Uploaded(UploadOutcome.REJECTED, "not a supported image format")
        announcement = {
            "filename": path.name,
            "content_type": CONTENT_TYPES[fmt],
            "size": len(data),
            "sha256": sha256,
            "tags": self.tags,
        }
        return self.client.upload_direct(announcement, data)
