"""Photo-like test pictures: what the demo gallery's flat shapes are not (gradients, sensor noise, sizes
of real cameras), for the decode parity tests and bench/decode.py; and the EXIF blocks cameras write into
them (`exif_block`: the tests' photos with EXIF, bench/enrichment.py)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from PIL.TiffImagePlugin import IFDRational

from imagesearch.exif import (
    DATE_TIME_ORIGINAL,
    EXIF_IFD,
    GPS_IFD,
    LENS_MODEL,
    MAKE,
    MODEL,
    OFFSET_TIME_ORIGINAL,
)

MAKER_NOTE = 0x927C


def photo_jpeg(width: int, height: int, *, seed: int = 0, quality: int = 85, **params: object) -> bytes:
    """A photo-like JPEG: smooth gradients, sensor-like noise and a dozen flat shapes; `params` go to
    Pillow's JPEG writer (exif=, progressive=...)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [x / width * 200 + 30, y / height * 180 + 40, (x + y) / (width + height) * 150 + 60], axis=-1
    )
    base += rng.normal(0, 12, (height, width, 3)).astype(np.float32)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(width // 20, width // 5))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((cx - r, cy - r, cx + r, cy + r), fill=color)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, **params)
    return out.getvalue()


def dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    """Decimal degrees as the three rationals GPS tags hold (seconds to 1/100)."""
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60 * 100)
    return IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 100)


def exif_block(
    *,
    taken: str | None = None,
    offset: str | None = None,
    make: str | None = None,
    model: str | None = None,
    lens: str | None = None,
    gps: tuple[float, float] | None = None,
    gps_raw: dict[int, Any] | None = None,
    maker_note: bytes | None = None,
) -> bytes:
    """An EXIF block (TIFF structure, without the JPEG `Exif\\0\\0` prefix) with the tags given; `gps_raw`
    sets GPS tags as given (broken ones on purpose)."""
    exif = Image.Exif()
    if make is not None:
        exif[MAKE] = make
    if model is not None:
        exif[MODEL] = model
    main = exif.get_ifd(EXIF_IFD)
    tags = (
        (DATE_TIME_ORIGINAL, taken),
        (OFFSET_TIME_ORIGINAL, offset),
        (LENS_MODEL, lens),
        (MAKER_NOTE, maker_note),
    )
    for tag, value in tags:
        if value is not None:
            main[tag] = value
    if gps is not None:
        lat, lon = gps
        exif.get_ifd(GPS_IFD).update(
            {1: "N" if lat >= 0 else "S", 2: dms(lat), 3: "E" if lon >= 0 else "W", 4: dms(lon)}
        )
    if gps_raw is not None:
        exif.get_ifd(GPS_IFD).update(gps_raw)
    return exif.tobytes()
