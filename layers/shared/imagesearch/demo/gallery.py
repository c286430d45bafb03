"""A generated gallery of shapes, uploaded to a running API (`imagesearch demo seed`).

Each picture goes through POST /images with a title ("Small red circle"), its caption as description and
its tags. The pictures are deterministic PNG bytes for a seed, so a second run sends the same bytes and the
API answers 200 with the existing record: re-running is safe and counts those as skipped.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from enum import StrEnum

import httpx

from imagesearch.demo.shapes import ShapeSample, sample
from imagesearch.http.retry import with_retries

GALLERY_SEED = 1  # training uses stream 0: the gallery shows pictures the model has not seen
GALLERY_SIZE = 256  # pixels; the model sees them downscaled to 64, as the training pictures


class UploadOutcome(StrEnum):
    ADDED = "added"
    SKIPPED = "skipped"  # the API already held these bytes
    FAILED = "failed"


@dataclass
class GalleryResult:
    """What happened to each picture, by filename."""

    outcomes: dict[str, tuple[UploadOutcome, str]] = field(default_factory=dict)

    def count(self, outcome: UploadOutcome) -> int:
        """How many pictures ended with `outcome`."""
        return sum(1 for value, _ in self.outcomes.values() if value == outcome)

    def failures(self) -> list[tuple[str, str]]:
        """(filename, detail) of every failed upload, sorted by filename."""
        return sorted(
            (name, detail) for name, (value, detail) in self.outcomes.items() if value == UploadOutcome.FAILED
        )


def gallery_filename(seed: int, index: int) -> str:
    """The filename a gallery picture is uploaded under."""
    return f"shapes-{seed}-{index:05d}.png"


def gallery_png(item: ShapeSample) -> bytes:
    """The picture as PNG bytes (same bytes for the same sample, so uploads de-duplicate)."""
    buffer = io.BytesIO()
    item.image.save(buffer, "PNG")
    return buffer.getvalue()


def upload_gallery(
    base_url: str,
    *,
    count: int,
    seed: int = GALLERY_SEED,
    size: int = GALLERY_SIZE,
    api_key: str | None = None,
    concurrency: int = 4,
    progress: Callable[[str, UploadOutcome], object] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> GalleryResult:
    """Generate `count` pictures of stream `seed` and upload them with at most `concurrency` in flight."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    result = GalleryResult()
    with (
        httpx.Client(base_url=base_url, headers=headers, timeout=60.0, transport=transport) as client,
        ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool,
    ):
        # pictures are drawn inside the workers, so drawing overlaps with uploads
        futures = {pool.submit(_upload, client, seed, index, size): index for index in range(count)}
        for future in as_completed(futures):
            name = gallery_filename(seed, futures[future])
            outcome, detail = future.result()
            result.outcomes[name] = (outcome, detail)
            if progress is not None:
                progress(name, outcome)
    return result


def _upload(client: httpx.Client, seed: int, index: int, size: int) -> tuple[UploadOutcome, str]:
    item = sample(index, seed=seed, size=size)
    files = {"file": (gallery_filename(seed, index), gallery_png(item), "image/png")}
    fields = {"title": item.title, "description": item.caption, "tags": list(item.tags)}
    try:
        response = _post(client, files, fields)
    except httpx.HTTPError as e:
        return UploadOutcome.FAILED, f"{type(e).__name__}: {e}"
    if response.status_code == 201:
        return UploadOutcome.ADDED, str(response.json()["id"])
    if response.status_code == 200:
        return UploadOutcome.SKIPPED, str(response.json()["id"])
    return UploadOutcome.FAILED, f"HTTP {response.status_code}: {response.text[:200]}"


def _post(
    client: httpx.Client, files: dict[str, tuple[str, bytes, str]], fields: Mapping[str, object]
) -> httpx.Response:
    """POST /images, retried on 429/5xx and connection errors (a stack still starting)."""
    return with_retries(lambda: client.post("/images", files=files, data=fields))
