"""Decoding and validation of untrusted image bytes, and conversion of every Pillow mode to RGB.

Shared by the embedder and the upload path: whatever arrives here is hostile until Pillow has decoded it
within the pixel limit. Only the formats named in `FORMATS` are ever handed to Pillow (so plugins such as
EPS, which shells out to Ghostscript, are unreachable), and only after the magic bytes say which one.
"""

from __future__ import annotations

import functools
import hashlib
import io
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageOps

from imagesearch.errors import ImageRejected, PayloadTooLarge, TooManyPixels
from imagesearch.logs import logger

# Pillow format names, in the order sniff_format tries them. AVIF is Pillow's own; HEIF (HEIC photos) comes
# from pillow-heif, registered on the first HEIF image (its import costs a cold start nothing until then).
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "HEIF")
# The content type of each, as records and responses give it.
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "AVIF": "image/avif",
    "HEIF": "image/heic",
}

# ISO base media file brands (the `ftyp` box): AVIF, and HEIF images coded with HEVC (HEIC).
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}

# Transparent pixels are composited on white: logos and product shots with an alpha channel are drawn for
# light pages, and Pillow's plain convert("RGB") would expose whatever colour the hidden pixels hold.
BACKGROUND = (255, 255, 255)

# Errors Pillow (and the struct/zlib code under it) raises for data it cannot decode. The AVIF (libavif)
# and HEIF (libheif) decoders report broken files as RuntimeError ("Missing or empty image item",
# "Decoding of color planes failed", ...).
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    TypeError,
    KeyError,
    RuntimeError,
)


def sniff_format(data: bytes) -> str | None:
    """The Pillow format name the magic bytes announce (one of FORMATS), else None."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:2] == b"BM" and len(head) >= 14:
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[4:8] == b"ftyp":
        brands = _ftyp_brands(data)
        if brands & _AVIF_BRANDS:
            return "AVIF"
        if brands & _HEIC_BRANDS:
            return "HEIF"
    return None


def _ftyp_brands(data: bytes) -> set[bytes]:
    """The major and compatible brands of a leading `ftyp` box (a generic `mif1` alone names no codec)."""
    size = int.from_bytes(data[:4], "big")
    if not 16 <= size <= min(len(data), 4096):
        return set()
    return {data[8:12]} | {data[i : i + 4] for i in range(16, size - 3, 4)}


def _bmff_truncated(data: bytes) -> bool:
    """Whether the top-level boxes of an ISO BMFF file (AVIF, HEIF) run past the end of the data."""
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        if size == 1:  # a 64-bit size follows the type
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        elif size == 0:  # to the end of the file
            return False
        if size < 8:
            return False  # not a box boundary: corrupt rather than short
        offset += size
    return offset != len(data)


@functools.cache
def _register_heif() -> None:
    from pillow_heif import register_heif_opener

    register_heif_opener()


def _looks_truncated(fmt: str, data: bytes) -> bool:
    """Whether the byte stream ends before its format says it should (decides "truncated" vs "corrupt")."""
    tail = data.rstrip(b"\x00")
    if fmt == "JPEG":
        return b"\xff\xd9" not in data[-1024:]
    if fmt == "PNG":
        return b"IEND" not in data[-64:]
    if fmt == "GIF":
        return not tail.endswith(b";")
    if fmt == "WEBP":
        return len(data) < 8 + int.from_bytes(data[4:8], "little")
    if fmt == "BMP":
        return len(data) < int.from_bytes(data[2:6], "little")
    if fmt in ("AVIF", "HEIF"):
        return _bmff_truncated(data)
    return False  # TIFF has no end marker; its offsets can point anywhere


@dataclass(frozen=True)
class _Opened:
    image: Image.Image  # EXIF-oriented, possibly decoded at reduced scale
    fmt: str
    width: int  # the original's size, EXIF-oriented
    height: int


def open_image(data: bytes, *, max_pixels: int, reduce_to: int | None = None) -> Image.Image:
    """Decode untrusted bytes into a fully loaded, EXIF-oriented image (first frame if animated).

    `reduce_to`: the image may come back smaller, as long as its shorter side keeps at least this many
    pixels (or its full size, if smaller): JPEGs are then decoded at 1/2, 1/4 or 1/8 scale in the DCT
    domain (Pillow's draft mode), which still decodes every block, so broken files fail as at full size.
    The pixel limit is checked on the full size. Other formats are decoded at full size.

    Raises ImageRejected (reason "empty", "unsupported_format", "truncated" or "corrupt") or TooManyPixels.
    """
    return _open(data, max_pixels=max_pixels, reduce_to=reduce_to).image


def _open(data: bytes, *, max_pixels: int, reduce_to: int | None) -> _Opened:
    """open_image's work, with the format and the original's size (read once, from the header)."""
    if not data:
        raise ImageRejected("the image is empty", reason="empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected(
            f"not a supported image format (expected one of {', '.join(FORMATS)})",
            reason="unsupported_format",
        )
    if fmt == "HEIF":
        try:
            _register_heif()
        except ImportError:  # a deployment without pillow-heif (the search function by default)
            raise ImageRejected(
                "HEIC/HEIF images are not supported here: send a JPEG, PNG or WebP",
                reason="unsupported_format",
            ) from None
    try:
        # Pillow's own bomb check uses a module global that callers may change; ours below is the real guard.
        # Its warning becomes an error (translated below) and the plugins' UserWarnings about malformed
        # tags are dropped: hostile input must not fill the logs. catch_warnings is process-wide before
        # Python 3.14, so concurrent calls may leave these two filters installed, which is harmless.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            img = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = img.size
            # Checked on the header, before load() allocates the full raster.
            if width * height > max_pixels:
                raise TooManyPixels(f"{width}x{height} pixels is over the limit of {max_pixels}")
            if width == 0 or height == 0:
                raise ImageRejected("the image has no pixels", reason="corrupt")
            if reduce_to is not None and fmt == "JPEG":
                img.draft(None, _draft_size(width, height, reduce_to))
            img.load()  # frame 0: Pillow opens animated files positioned on their first frame
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise TooManyPixels(f"too many pixels for this service: {e}") from e
    except ImageRejected:
        raise
    except _DECODE_ERRORS as e:
        if "Security limit exceeded" in str(e):  # libheif's own size guard, before our header check
            raise TooManyPixels(f"too many pixels for this service: {e}") from e
        reason = "truncated" if _looks_truncated(fmt, data) else "corrupt"
        raise ImageRejected(f"cannot decode the {fmt} image ({reason})", reason=reason) from e
    oriented, swapped = _apply_orientation(img)
    return _Opened(oriented, fmt, *((height, width) if swapped else (width, height)))


def _draft_size(width: int, height: int, reduce_to: int) -> tuple[int, int]:
    """The size to ask Pillow's JPEG draft for: it picks the largest DCT scale (1/8 to 1) whose result is
    at least this size, so the shorter side keeps `reduce_to` pixels (or all it has)."""
    short = min(width, height, max(1, reduce_to))
    return (width * short // min(width, height), height * short // min(width, height))


@contextmanager
def _malformed_tags_unreported() -> Iterator[None]:
    """Pillow's UserWarnings about malformed EXIF tags dropped, as in open_image: hostile input must not
    fill the logs (exif.py reports what it could not read, once per image)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        yield


def _apply_orientation(img: Image.Image) -> tuple[Image.Image, bool]:
    """Rotate/flip by the EXIF orientation tag, and whether that swapped width and height; a broken EXIF
    block leaves the (valid) pixels as they are."""
    try:
        with _malformed_tags_unreported():
            orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
            oriented = ImageOps.exif_transpose(img)
    except _DECODE_ERRORS as e:
        logger.warning("ignoring unreadable EXIF orientation", extra={"error": repr(e)})
        return img, False
    if oriented is None:
        return img, False
    return oriented, orientation in (5, 6, 7, 8)  # transpose, rotate 270, transverse, rotate 90


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB: alpha composited on white, 16-bit and float data rescaled."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _high_depth_to_rgb(img)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        if img.mode == "La":  # premultiplied; Pillow only converts it via LA
            img = img.convert("LA")
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    # L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX: Pillow's own conversions are correct for these.
    return img.convert("RGB")


def _high_depth_to_rgb(img: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit integer and float greyscale to 0..255 (Pillow's convert clips them to white).

    I;16 is scaled by its full range. "I" holds 8- or 16-bit data (Pillow opens 16-bit sources as "I"):
    values within 0..255 are kept, within 0..65535 scaled as 16-bit, anything else stretched min..max.
    Floats within 0..1 are scaled by 255, other ranges stretched min..max.
    """
    values = np.asarray(img)
    if img.mode == "F":
        values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        low, high = float(values.min()), float(values.max())
        if low >= 0.0 and high <= 1.0:
            scaled = values * 255.0
        else:
            scaled = _stretch(values, low, high)
    else:
        values = values.astype(np.float64)
        low, high = float(values.min()), float(values.max())
        if img.mode.startswith("I;16") or (low >= 0 and 255 < high <= 65535):
            scaled = values / 257.0  # 65535 / 255: full 16-bit range onto full 8-bit range
        elif low >= 0 and high <= 255:
            scaled = values
        else:
            scaled = _stretch(values, low, high)
    grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map low..high linearly onto 0..255 (a constant image becomes black)."""
    if high <= low:
        return np.zeros_like(values)
    return (values - low) * (255.0 / (high - low))


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image
    content_type: str
    width: int
    height: int
    sha256: str
    size: int


def decode_upload(
    data: bytes, *, max_bytes: int, max_pixels: int, reduce_to: int | None = None
) -> DecodedImage:
    """Validate untrusted bytes: within the size limit, a supported type by its bytes, fully decodable.

    With `reduce_to`, `image` may be smaller than the original (see `open_image`); `width` and `height`
    are always the original's (EXIF-oriented)."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the file is {len(data)} bytes; the limit is {max_bytes}")
    opened = _open(data, max_pixels=max_pixels, reduce_to=reduce_to)
    return DecodedImage(
        image=opened.image,
        content_type=CONTENT_TYPES[opened.fmt],
        width=opened.width,
        height=opened.height,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )
