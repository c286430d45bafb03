"""Test factory for photos with EXIF: `photo_with_exif(fmt="PNG", taken="2024:07:14 10:30:00")`."""

from __future__ import annotations

from typing import Any

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from support.images import encode, make_picture

EXIF_IFD, GPS_IFD = 0x8769, 0x8825


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
    """An EXIF block (TIFF structure, without the JPEG `Exif\\0\\0` prefix) with the tags given."""
    exif = Image.Exif()
    if make is not None:
        exif[0x010F] = make
    if model is not None:
        exif[0x0110] = model
    main = exif.get_ifd(EXIF_IFD)
    for tag, value in ((0x9003, taken), (0x9011, offset), (0xA434, lens), (0x927C, maker_note)):
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


def photo_with_exif(*, fmt: str = "JPEG", color: str = "red", shape: str = "circle", **tags: Any) -> bytes:
    """A picture (as make_picture draws it) in `fmt` carrying the EXIF of `exif_block(**tags)`."""
    return photo_with_exif_bytes(exif_block(**tags), fmt=fmt, color=color, shape=shape)


def photo_with_exif_bytes(
    raw: bytes, *, fmt: str = "JPEG", color: str = "red", shape: str = "circle"
) -> bytes:
    """A picture in `fmt` carrying exactly these EXIF bytes (which may be broken on purpose)."""
    return encode(make_picture(color=color, shape=shape, size=(96, 64)), fmt, exif=raw)
