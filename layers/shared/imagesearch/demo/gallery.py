"""A generated gallery of shapes, uploaded to a running API (`imagesearch demo seed`).

Each picture goes through the client's upload (POST /images) with a title ("Small red circle"), its
caption as description and its tags. The pictures are deterministic PNG bytes for a seed, so a second run
sends the same bytes and the API answers 200 with the existing record: re-running is safe and counts those
as skipped.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

from imagesearch.client import Client
from imagesearch.client.bulk_upload import Uploaded, UploadOutcome, outcome_of, upload_all
from imagesearch.demo.shapes import ShapeSample, sample

GALLERY_SEED = 1  # training uses stream 0: the gallery shows pictures the model has not seen
GALLERY_SIZE = 256  # pixels; the model sees them downscaled to 64, as the training pictures
FAILED = (UploadOutcome.REJECTED, UploadOutcome.ERROR)


@dataclass
class GalleryResult:
    """What happened to each picture, by filename."""

    outcomes: dict[str, Uploaded] = field(default_factory=dict)

    def count(self, outcome: UploadOutcome) -> int:
        """How many pictures ended with `outcome`."""
        return sum(1 for value in self.outcomes.values() if value.outcome == outcome)

    def failures(self) -> list[tuple[str, str]]:
        """(filename, detail) of every refused or failed upload, sorted by filename."""
        return sorted(
            (name, value.detail) for name, value in self.outcomes.items() if value.outcome in FAILED
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
    client: Client,
    *,
    count: int,
    seed: int = GALLERY_SEED,
    size: int = GALLERY_SIZE,
    concurrency: int = 4,
    progress: Callable[[str, UploadOutcome], object] | None = None,
) -> GalleryResult:
    """Generate `count` pictures of stream `seed` and upload them with at most `concurrency` in flight."""

    def upload(index: int) -> Uploaded:
        # drawn inside the workers, so drawing overlaps with uploads
        item = sample(index, seed=seed, size=size)
        return outcome_of(
            lambda: client.upload_result(
                gallery_png(item),
                filename=gallery_filename(seed, index),
                title=item.title,
                description=item.caption,
                tags=item.tags,
            )
        )

    def report(index: int, outcome: UploadOutcome) -> None:
        if progress is not None:
            progress(gallery_filename(seed, index), outcome)

    uploaded = upload_all(range(count), upload, concurrency=concurrency, progress=report)
    return GalleryResult({gallery_filename(seed, index): value for index, value in uploaded.items()})
