"""What a photo's EXIF block says: when it was taken, with which camera and lens, and where.

Read from the original's bytes with Pillow, after `imaging.decode_upload` accepted them: the oriented image
that decoding returns is a copy, and a TIFF's copy no longer holds its tags. Opening the bytes again reads
the headers only (no pixels). Odd EXIF never raises: the field stays empty and `problems` says why.

The decode does not hand its EXIF block over, on purpose: it would save the second open only, about
0.15 ms of a 4000x3000 JPEG's 0.25 ms here, beside a 28 ms reduced decode (`bench/decode.py --exif`,
docs/search.md), while a TIFF has no block to hand (its tags are the file's IFD0, read from the open file,
and gone from the oriented copy), and the enrich back-fill reads originals it never decoded.
"""

from __future__ import annotations

import io
import math
import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from PIL import Image

from imagesearch.imaging import _register_heif, sniff_format

# Tags (EXIF 2.32): IFD0, the Exif IFD, and the GPS IFD.
MAKE, MODEL = 0x010F, 0x0110
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
DATE_TIME_ORIGINAL, OFFSET_TIME_ORIGINAL, LENS_MODEL = 0x9003, 0x9011, 0xA434
GPS_LATITUDE_REF, GPS_LATITUDE, GPS_LONGITUDE_REF, GPS_LONGITUDE = 1, 2, 3, 4

FIRST_YEAR, LAST_YEAR = 1826, 9998  # the first photograph; anything later than 9998 is a broken clock
MAX_TEXT = 128  # make, model and lens are short names; anything longer is cut
_OFFSET = re.compile(r"^([+-])(\d\d):(\d\d)$")
# What a malformed block makes Pillow's EXIF parser raise.
_PARSE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError, KeyError)


@dataclass(frozen=True)
class ExifData:
    """The EXIF fields of one image; None where absent or unusable (`problems` then says why)."""

    taken_at: datetime | None = None  # aware: only when OffsetTimeOriginal gives the offset
    taken_at_local: datetime | None = None  # naive: the wall-clock time as written
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    problems: tuple[str, ...] = field(default=())

    def without_location(self) -> ExifData:
        return replace(self, latitude=None, longitude=None)


def read_exif(data: bytes) -> ExifData:
    """The EXIF fields of an image's bytes (any format of imaging.FORMATS; none for GIF and BMP)."""
    problems: list[str] = []
    loaded = _load(data, problems)
    if loaded is None:
        return ExifData(problems=tuple(problems))
    exif, main, gps = loaded
    taken_at_local, taken_at = _taken(main.get(DATE_TIME_ORIGINAL), main.get(OFFSET_TIME_ORIGINAL), problems)
    latitude, longitude = _location(gps, problems)
    return ExifData(
        taken_at=taken_at,
        taken_at_local=taken_at_local,
        camera_make=_text(exif.get(MAKE), "make", problems),
        camera_model=_text(exif.get(MODEL), "model", problems),
        lens=_text(main.get(LENS_MODEL), "lens", problems),
        latitude=latitude,
        longitude=longitude,
        problems=tuple(problems),
    )


def _load(data: bytes, problems: list[str]) -> tuple[dict[int, Any], dict[int, Any], dict[int, Any]] | None:
    """IFD0, the Exif IFD and the GPS IFD (each {} when absent or unreadable); None without EXIF."""
    fmt = sniff_format(data)
    if fmt is None:
        return None
    if fmt == "HEIF":
        try:
            _register_heif()  # as decoding does (enrich reads originals it never decoded)
        except ImportError:
            problems.append("exif: HEIF support (pillow-heif) is not installed here")
            return None
    try:
        with _noted_warnings("exif", problems), Image.open(io.BytesIO(data), formats=[fmt]) as img:
            if fmt == "TIFF":  # the tags are IFD0 itself; its sub-IFDs are read from the open file
                exif = img.getexif()
            else:
                # PNG's getexif() would decode every pixel to look for an eXIf chunk after the pixels.
                raw = img.info.get("exif")
                if not raw:
                    return None
                exif = Image.Exif()
                exif.load(raw)
            return (
                dict(exif),
                _ifd(exif, EXIF_IFD, "exif", problems),
                _ifd(exif, GPS_IFD, "gps", problems),
            )
    except (*_PARSE_ERRORS, RuntimeError, Image.DecompressionBombError) as e:
        problems.append(f"exif: unreadable block ({type(e).__name__}: {e})"[:300])
        return None


@contextmanager
def _noted_warnings(name: str, problems: list[str]) -> Iterator[None]:
    """Pillow's warnings about corrupt tags (it drops those tags) become problems, not log noise."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            corrupt = [w for w in caught if issubclass(w.category, UserWarning)]
            problems.extend(f"{name}: {w.message}"[:300] for w in corrupt[:10])


def _ifd(exif: Image.Exif, tag: int, name: str, problems: list[str]) -> dict[int, Any]:
    try:
        with _noted_warnings(name, problems):
            return dict(exif.get_ifd(tag))
    except _PARSE_ERRORS as e:
        problems.append(f"{name}: unreadable IFD ({type(e).__name__}: {e})"[:300])
        return {}


def _text(value: Any, name: str, problems: list[str]) -> str | None:
    """A printable, trimmed string: ASCII tags arrive as str, or as bytes from odd writers."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        problems.append(f"{name}: not text ({type(value).__name__})")
        return None
    text = " ".join("".join(ch for ch in value if ch.isprintable()).split())
    return text[:MAX_TEXT] or None


def _taken(value: Any, offset: Any, problems: list[str]) -> tuple[datetime | None, datetime | None]:
    """(wall-clock time, aware time when the offset is known); never guessed from anything else."""
    text = _text(value, "taken_at", problems)
    if text is None:
        return None, None
    try:
        local = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        problems.append(f"taken_at: {text[:40]!r} is not a date")
        return None, None
    if not FIRST_YEAR <= local.year <= LAST_YEAR:  # and an offset cannot push it out of datetime's range
        problems.append(f"taken_at: the year {local.year} is not plausible")
        return None, None
    zone = _text(offset, "taken_at offset", problems)
    if zone is None:
        return local, None
    match = _OFFSET.match(zone)
    if match is None or int(match[2]) > 14 or int(match[3]) >= 60:
        problems.append(f"taken_at: offset {zone[:20]!r} is not an offset; kept as local time only")
        return local, None
    sign = -1 if match[1] == "-" else 1
    minutes = sign * (int(match[2]) * 60 + int(match[3]))
    return local, local.replace(tzinfo=timezone(timedelta(minutes=minutes)))


def _location(gps: dict[int, Any], problems: list[str]) -> tuple[float | None, float | None]:
    """Signed decimal degrees, both or neither."""
    if GPS_LATITUDE not in gps and GPS_LONGITUDE not in gps:
        return None, None
    latitude = _degrees(gps.get(GPS_LATITUDE), gps.get(GPS_LATITUDE_REF), "NS", 90.0, "latitude", problems)
    longitude = _degrees(
        gps.get(GPS_LONGITUDE), gps.get(GPS_LONGITUDE_REF), "EW", 180.0, "longitude", problems
    )
    if latitude is None or longitude is None:
        return None, None
    return latitude, longitude


def _degrees(value: Any, ref: Any, refs: str, limit: float, name: str, problems: list[str]) -> float | None:
    """Degrees, minutes, seconds (three rationals) and the N/S or E/W reference -> signed degrees."""
    ref_text = (_text(ref, name, problems) or "").upper()[:1]
    if not ref_text or ref_text not in refs:
        problems.append(f"{name}: reference {ref_text or 'missing'!r} is not one of {refs}")
        return None
    try:
        parts = [float(part) for part in value]
    except (TypeError, ValueError, ZeroDivisionError):
        problems.append(f"{name}: not degrees, minutes and seconds")
        return None
    if len(parts) != 3 or not all(math.isfinite(p) and p >= 0 for p in parts):
        # A rational with a zero denominator reads as NaN (Pillow's IFDRational).
        problems.append(f"{name}: {parts!r} is not degrees, minutes and seconds")
        return None
    degrees = parts[0] + parts[1] / 60 + parts[2] / 3600
    if degrees > limit:
        problems.append(f"{name}: {degrees} is out of range")
        return None
    return -degrees if ref_text == refs[1] else degrees
