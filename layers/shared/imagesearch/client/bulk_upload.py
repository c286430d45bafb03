"""Many uploads through one Client, with bounded concurrency and resume (`imagesearch ingest`, `demo seed`).

Each file is hashed first; a file whose bytes the API already holds (GET /images?sha256=) is skipped without
being sent, so an interrupted run resumes where it stopped. The client picks multipart or a presigned
upload by size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import httpx

from imagesearch.client.errors import ApiError
from imagesearch.client.operations import MULTIPART_LIMIT, UploadResult
from imagesearch.client.sync import Client

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif", ".heic", ".heif"}
)
DIRECT_UPLOAD_LIMIT = MULTIPART_LIMIT


class UploadOutcome(StrEnum):
    ADDED = "added"
    SKIPPED = "skipped"  # the API already has these bytes
    REJECTED = "rejected"  # the API refused the file (not an image, too large, ...)
    ERROR = "error"  # could not be sent (network, server down after retries)


@dataclass(frozen=True)
class Uploaded:
    outcome: UploadOutcome
    detail: str  # the image id, or why it is not there


def outcome_of(upload: Callable[[], UploadResult]) -> Uploaded:
    """What became of one upload: added or skipped (with the id), refused by the API (its problem's
    detail), or not sent at all (network, server errors after the client's retries)."""
    try:
        result = upload()
    except ApiError as e:
        outcome = UploadOutcome.REJECTED if 400 <= e.status < 500 else UploadOutcome.ERROR
        return Uploaded(outcome, e.detail if outcome is UploadOutcome.REJECTED else str(e))
    except (httpx.HTTPError, OSError) as e:
        return Uploaded(UploadOutcome.ERROR, f"{type(e).__name__}: {e}")
    return Uploaded(UploadOutcome.ADDED if result.created else UploadOutcome.SKIPPED, str(result.image.id))


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
    """Uploads files through `client` with at most `concurrency` requests in flight."""

    def __init__(self, client: Client, *, tags: Sequence[str] = (), concurrency: int = 4) -> None:
        self.client = client
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

        def upload() -> UploadResult:
            # resume: bytes the API has (or is still embedding, for direct uploads) are not sent again
            sha256 = hashlib.sha256(data).hexdigest()
            for existing in self.client.list_images(sha256=sha256, page_size=1):
                return UploadResult(existing, created=False)
            return self.client.upload_result(data, filename=path.name, tags=self.tags or None)

        return outcome_of(upload)
