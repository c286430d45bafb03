"""JPEGs decoded at reduced scale (Pillow's draft mode) for the model input and the thumbnail: the same
validation as a full decode, the original's size on record, and the vectors of the full-size path
(cosine >= 0.999) on photo-like JPEGs and on the demo gallery's pictures."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from imagesearch.config import DEMO_MODEL_DIR
from imagesearch.demo.gallery import GALLERY_SEED, gallery_png
from imagesearch.demo.photos import photo_jpeg
from imagesearch.demo.shapes import sample
from imagesearch.errors import ImageRejected, TooManyPixels
from imagesearch.images.thumbnails import THUMBNAIL_SIZE, make_thumbnail
from imagesearch.imaging import decode_upload, open_image
from imagesearch.model.embedder import Embedder

from .conftest import ExportedModel

LIMIT = 64_000_000
PHOTO_SIZES = ((1600, 1200), (4000, 3000), (1200, 1600))


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    return {f"{w}x{h}": photo_jpeg(w, h, seed=i) for i, (w, h) in enumerate(PHOTO_SIZES)}


def gallery_jpegs(count: int = 24, size: int = 1024) -> list[bytes]:
    """The demo gallery's pictures drawn at photo size and stored as JPEG (quality 90)."""
    out = []
    for index in range(count):
        buffer = io.BytesIO()
        sample(index, seed=GALLERY_SEED, size=size).image.save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def min_cosine(embedder: Embedder, jpegs: list[bytes]) -> float:
    """Smallest cosine between the reduced path (bytes) and the full-size one (a full decode)."""
    reduced = embedder.embed_images(jpegs)
    full = embedder.embed_images([open_image(data, max_pixels=LIMIT) for data in jpegs])
    return float(np.sum(reduced * full, axis=1).min())


# --- decoding --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduce_to", [64, 224, 256, 1000])
def test_reduced_decode_covers_the_requested_side(photos: dict[str, bytes], reduce_to: int) -> None:
    for name, data in photos.items():
        full = open_image(data, max_pixels=LIMIT)
        image = open_image(data, max_pixels=LIMIT, reduce_to=reduce_to)
        assert min(image.size) >= min(reduce_to, *full.size), name
        # the largest scale that does: half of it would be too small
        scale = full.width / image.width
        assert scale in (1, 2, 4, 8), name
        assert scale == 8 or min(full.size) / (scale * 2) < reduce_to, name
        assert image.mode == "RGB"


def test_decode_upload_records_the_original_size(photos: dict[str, bytes]) -> None:
    decoded = decode_upload(photos["4000x3000"], max_bytes=10**8, max_pixels=LIMIT, reduce_to=256)
    assert (decoded.width, decoded.height) == (4000, 3000)
    assert decoded.image.size == (500, 375)
    portrait = decode_upload(photos["1200x1600"], max_bytes=10**8, max_pixels=LIMIT, reduce_to=256)
    assert (portrait.width, portrait.height) == (1200, 1600)
    assert portrait.image.size == (300, 400)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_exif_orientation_with_a_reduced_decode(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = photo_jpeg(1600, 1200, exif=exif.tobytes())
    decoded = decode_upload(data, max_bytes=10**8, max_pixels=LIMIT, reduce_to=224)
    full = open_image(data, max_pixels=LIMIT)
    assert (decoded.width, decoded.height) == full.size
    assert decoded.image.size == (full.width // 4, full.height // 4)


def test_the_pixel_limit_is_checked_on_the_full_size(photos: dict[str, bytes]) -> None:
    with pytest.raises(TooManyPixels):
        open_image(photos["4000x3000"], max_pixels=4000 * 3000 - 1, reduce_to=64)
    with pytest.raises(TooManyPixels):
        decode_upload(photos["4000x3000"], max_bytes=10**8, max_pixels=4000 * 3000 - 1, reduce_to=64)


@pytest.mark.parametrize("progressive", [False, True])
def test_broken_jpegs_fail_as_at_full_size(progressive: bool) -> None:
    data = photo_jpeg(1600, 1200, progressive=progressive)
    for cut in (len(data) // 2, len(data) - 200):
        with pytest.raises(ImageRejected) as full:
            open_image(data[:cut], max_pixels=LIMIT)
        with pytest.raises(ImageRejected) as reduced:
            open_image(data[:cut], max_pixels=LIMIT, reduce_to=224)
        assert reduced.value.reason == full.value.reason == "truncated"


def test_other_formats_decode_at_full_size() -> None:
    png = gallery_png(sample(0, seed=GALLERY_SEED, size=512))
    assert open_image(png, max_pixels=LIMIT, reduce_to=64).size == (512, 512)
    decoded = decode_upload(png, max_bytes=10**8, max_pixels=LIMIT, reduce_to=64)
    assert (decoded.width, decoded.height) == decoded.image.size == (512, 512)


def test_thumbnail_from_the_reduced_decode(photos: dict[str, bytes]) -> None:
    for data in photos.values():
        full = Image.open(io.BytesIO(make_thumbnail(open_image(data, max_pixels=LIMIT))))
        reduced_image = open_image(data, max_pixels=LIMIT, reduce_to=THUMBNAIL_SIZE)
        reduced = Image.open(io.BytesIO(make_thumbnail(reduced_image)))
        assert reduced.size == full.size
        diff = np.abs(np.asarray(reduced, dtype=np.int16) - np.asarray(full, dtype=np.int16))
        assert diff.mean() < 3.0


# --- parity of the vectors -------------------------------------------------------------------------------
def check_parity(embedder: Embedder, photos: dict[str, bytes]) -> None:
    assert min_cosine(embedder, list(photos.values())) >= 0.999
    assert min_cosine(embedder, gallery_jpegs()) >= 0.999


def test_parity_with_the_demo_bundle(photos: dict[str, bytes]) -> None:
    embedder = Embedder(DEMO_MODEL_DIR, threads=2)
    check_parity(embedder, photos)
    # the gallery as uploaded (PNG): nothing to reduce, the very same vectors
    pngs = [gallery_png(sample(i, seed=GALLERY_SEED, size=256)) for i in range(8)]
    full = embedder.embed_images([open_image(data, max_pixels=LIMIT) for data in pngs])
    np.testing.assert_array_equal(embedder.embed_images(pngs), full)


@pytest.mark.export
def test_parity_with_the_tiny_vit(vit_export: ExportedModel, photos: dict[str, bytes]) -> None:
    check_parity(Embedder(vit_export.bundle_dir, threads=2), photos)


@pytest.mark.export
def test_parity_with_the_tiny_resnet(resnet_export: ExportedModel, photos: dict[str, bytes]) -> None:
    check_parity(Embedder(resnet_export.bundle_dir, threads=2), photos)
