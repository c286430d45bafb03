"""Test factory for photos with EXIF: `photo_with_exif(fmt="PNG", taken="2024:07:14 10:30:00")`."""

from __future__ import annotations

from typing import Any

from imagesearch.demo.photos import exif_block
from support.images import encode, make_picture

__all__ = ["exif_block", "photo_with_exif", "photo_with_exif_bytes"]


def photo_with_exif(*, fmt: str = "JPEG", color: str = "red", shape: str = "circle", **tags: Any) -> bytes:
    """A picture (as make_picture draws it) in `fmt` carrying the EXIF of `exif_block(**tags)`."""
    return photo_with_exif_bytes(exif_block(**tags), fmt=fmt, color=color, shape=shape)


def photo_with_exif_bytes(
    raw: bytes, *, fmt: str = "JPEG", color: str = "red", shape: str = "circle"
) -> bytes:
    """A picture in `fmt` carrying exactly these EXIF bytes (which may be broken on purpose)."""
    return encode(make_picture(color=color, shape=shape, size=(96, 64)), fmt, exif=raw)
