"""The numpy pHash (imagesearch.enrichment.phash) against imagehash.phash, and its stability."""

from __future__ import annotations

import io

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageEnhance
from support.images import make_picture

from imagesearch.demo.photos import photo_jpeg
from imagesearch.enrichment.phash import hamming, phash, phash_bits, to_hex
from imagesearch.imaging import decode_upload

LIMIT = 64 * 1024 * 1024


def photo(width: int, height: int, seed: int) -> Image.Image:
    return Image.open(io.BytesIO(photo_jpeg(width, height, seed=seed)))


def noise(width: int, height: int, seed: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4}.get(mode)
    shape = (height, width, channels) if channels else (height, width)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue()))


VARIED = [
    *(pytest.param(photo(w, h, seed), id=f"photo-{w}x{h}-{seed}") for w, h, seed in [
        (640, 480, 0), (480, 640, 1), (1024, 768, 2), (300, 300, 3), (97, 131, 4), (2000, 200, 5),
    ]),
    *(pytest.param(noise(w, h, seed, mode), id=f"noise-{mode}-{w}x{h}") for w, h, seed, mode in [
        (64, 64, 0, "RGB"), (333, 222, 1, "RGB"), (40, 90, 2, "L"), (128, 96, 3, "RGBA"), (9, 7, 4, "RGB"),
    ]),
    pytest.param(photo(400, 300, 9).convert("P", palette=Image.Palette.ADAPTIVE), id="palette"),
    pytest.param(jpeg(photo(800, 600, 10), 30), id="jpeg-q30"),
]  # fmt: skip


@pytest.mark.parametrize("image", VARIED)
def test_equals_imagehash_bit_for_bit(image: Image.Image) -> None:
    expected = imagehash.phash(image)
    assert to_hex(phash(image)) == str(expected)
    assert (phash_bits(image) == expected.hash).all()


def test_is_a_signed_64_bit_integer_as_the_bigint_column_stores() -> None:
    image = photo(320, 240, 0)
    value, unsigned = phash(image), int(str(imagehash.phash(image)), 16)
    # The first bit is DC, the mean brightness, above the median of any picture that is not black: the
    # sign bit, so the signed value is below zero and two's complement of imagehash's.
    assert -(2**63) <= value < 0 and value == unsigned - 2**64
    assert hamming(value, unsigned) == 0 and hamming(-1, 0) == 64


@pytest.mark.parametrize("size", [(50, 50), (96, 64)])
def test_ties_at_the_median_are_below_it(size: tuple[int, int]) -> None:
    """A uniform picture: every coefficient but DC is 0 in exact arithmetic, so only DC is set (imagehash
    agrees: its FFT gives exact zeros there). Mirror-symmetric pictures tie pairs of coefficients, where
    imagehash's bits follow its float noise: ours set neither, within a few bits of it."""
    uniform = Image.new("RGB", size, (10, 10, 10))
    assert to_hex(phash(uniform)) == str(imagehash.phash(uniform)) == "8000000000000000"
    for shape in ("circle", "square", "triangle"):
        picture = make_picture(color="red", shape=shape, background="black", size=size)
        assert hamming(phash(picture), int(str(imagehash.phash(picture)), 16)) <= 4


def test_stable_under_recompression_resizing_and_reduced_decoding() -> None:
    original = photo(1024, 768, 42)
    value = phash(original)
    assert hamming(value, phash(jpeg(original, 30))) <= 4
    assert hamming(value, phash(original.resize((256, 192), Image.Resampling.BILINEAR))) <= 4
    assert hamming(value, phash(original.resize((2048, 1536)))) <= 4
    assert hamming(value, phash(ImageEnhance.Brightness(original).enhance(1.1))) <= 4
    # ingestion hashes the image it decoded at reduced scale (a JPEG's DCT scaling) for its models
    data = photo_jpeg(1600, 1200, seed=42)
    reduced = decode_upload(data, max_bytes=LIMIT, max_pixels=LIMIT, reduce_to=256).image
    assert reduced.size[0] < 1600
    assert hamming(phash(reduced), phash(Image.open(io.BytesIO(data)))) <= 2


def test_different_pictures_are_far_apart() -> None:
    values = [phash(photo(640, 480, seed)) for seed in range(10)]
    distances = [hamming(a, b) for i, a in enumerate(values) for b in values[i + 1 :]]
    assert min(distances) > 8  # imagesearch.images.duplicates.DISTANCE
