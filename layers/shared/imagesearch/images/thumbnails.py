"""Thumbnails: about 256 px on the long side, WebP, written beside the original."""

from __future__ import annotations

import io

from PIL import Image

from imagesearch.imaging import to_rgb

THUMBNAIL_SIZE = 256
THUMBNAIL_QUALITY = 80
THUMBNAIL_CONTENT_TYPE = "image/webp"


def make_thumbnail(image: Image.Image, *, size: int = THUMBNAIL_SIZE) -> bytes:
    """WebP bytes of `image` scaled to fit `size` x `size` (never enlarged), in RGB."""
    thumb = to_rgb(image)
    if thumb is image:
        thumb = image.copy()  # thumbnail() works in place; the caller still needs the full image
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    thumb.save(out, format="WEBP", quality=THUMBNAIL_QUALITY, method=4)
    return out.getvalue()
