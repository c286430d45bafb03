"""A 64-bit perceptual hash (pHash) of an image, equal bit for bit to `imagehash.phash`.

imagehash needs scipy and PyWavelets, too heavy for the Lambda layer; the DCT-II of a 32x32 image is two
small matrix products. The steps are imagehash's: grayscale, 32x32 with Lanczos, the DCT over both axes
(scipy.fftpack's unnormalised type II), its top-left 8x8 (the lowest frequencies, DC included), and one bit
per coefficient above their median, row by row, the first the most significant. (Ties at the median,
in uniform or mirror-symmetric pictures, are the one exception: see `phash_bits`.)

Stored as a signed 64-bit integer (PostgreSQL bigint); Hamming distance is `hamming`, or in SQL
`bit_count((a # b)::bit(64))`.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

HASH_SIZE = 8
IMAGE_SIZE = HASH_SIZE * 4  # imagehash's highfreq_factor
BITS = HASH_SIZE * HASH_SIZE


@functools.cache
def _dct_matrix(n: int) -> np.ndarray:
    """D with D @ x == scipy.fftpack.dct(x, type=2) along the first axis: 2 cos(pi k (2m + 1) / 2n)."""
    k = np.arange(n)[:, None]
    m = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * m + 1) / (2 * n))


def phash_bits(image: Image.Image) -> np.ndarray:
    """The 8x8 boolean hash matrix, as `imagehash.phash(image).hash`."""
    small = image.convert("L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.float64)
    dct = _dct_matrix(IMAGE_SIZE)
    # Only the top-left block is kept: the first HASH_SIZE rows of D on each side.
    low = dct[:HASH_SIZE] @ pixels @ dct[:HASH_SIZE].T
    # Rounded, so that coefficients equal in exact arithmetic (a uniform or mirror-symmetric picture) are
    # equal here too and none of a tie is above the median. imagehash's FFT leaves float noise on them
    # instead, which decides its bits there: bit for bit equal wherever no two coefficients tie.
    low = np.round(low, 6)
    return np.asarray(low > np.median(low))


def phash(image: Image.Image) -> int:
    """The image's pHash as a signed 64-bit integer (the bigint column `images.phash`)."""
    value = 0
    for bit in phash_bits(image).flatten():
        value = (value << 1) | int(bit)
    return value - (1 << BITS) if value >= 1 << (BITS - 1) else value


def to_hex(value: int) -> str:
    """The 16 hex digits imagehash prints for the same hash (`str(imagehash.phash(image))`)."""
    return f"{value & ((1 << BITS) - 1):016x}"


def hamming(a: int, b: int) -> int:
    """The number of differing bits of two hashes (signed or not)."""
    return ((a ^ b) & ((1 << BITS) - 1)).bit_count()
