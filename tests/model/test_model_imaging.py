"""imaging: untrusted bytes are decoded within limits or refused with the project's errors, quickly."""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from support.fuzz import examples
from support.images import encode as encode_image

from imagesearch.errors import ImageRejected, TooManyPixels
from imagesearch.imaging import FORMATS, open_image, sniff_format, to_rgb

ImageFactory = Callable[..., Image.Image]
Encoder = Callable[..., bytes]
LIMIT = 64_000_000


def png_with_header(width: int, height: int, *, idat: bytes = b"") -> bytes:
    """A PNG whose IHDR claims any size, with whatever (tiny) image data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", idat or zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def rejected(data: bytes, *, max_pixels: int = LIMIT) -> ImageRejected:
    """The error open_image raises, asserting it came fast."""
    started = time.perf_counter()
    with pytest.raises(ImageRejected) as info:
        open_image(data, max_pixels=max_pixels)
    assert time.perf_counter() - started < 2.0
    return info.value


@pytest.mark.parametrize("fmt", FORMATS)
def test_sniff_and_open_every_format(fmt: str, make_image: ImageFactory, encode: Encoder) -> None:
    data = encode(make_image("RGB", (40, 30)), fmt)
    assert sniff_format(data) == fmt
    img = open_image(data, max_pixels=LIMIT)
    assert img.size == (40, 30)
    assert img.getpixel((0, 0)) is not None  # loaded, not lazy


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello world, certainly not an image",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="10" height="10"/></svg>',
        b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
        b"\x00\x00\x01\x00",  # ICO
        b"BM",  # too short to be a BMP
    ],
)
def test_unknown_formats_are_refused(data: bytes) -> None:
    assert sniff_format(data) is None
    error = rejected(data)
    assert error.reason == ("empty" if not data else "unsupported_format")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "AVIF", "HEIF"])
def test_truncated_images(fmt: str, make_image: ImageFactory, encode: Encoder) -> None:
    data = encode(make_image("RGB", (120, 90)), fmt)
    assert rejected(data[: len(data) // 2]).reason == "truncated"


@pytest.mark.parametrize("fmt", ["AVIF", "HEIF"])
def test_avif_and_heic_decode_to_the_same_picture(fmt: str, encode: Encoder) -> None:
    # A photo-like picture (smooth gradients, one hard edge): lossy codecs keep it close.
    y, x = np.mgrid[0:64, 0:96]
    pixels = np.stack([x * 255 // 95, y * 255 // 63, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    pixels[16:48, 24:56] = (220, 30, 30)
    picture = Image.fromarray(pixels)
    decoded = np.asarray(open_image(encode(picture, fmt, quality=95), max_pixels=LIMIT).convert("RGB"))
    assert decoded.shape == (64, 96, 3)
    assert np.abs(decoded.astype(int) - np.asarray(picture).astype(int)).mean() < 8  # lossy, but the same


def test_iso_bmff_files_of_other_kinds_are_refused() -> None:
    # An MP4 video and a generic HEIF container naming no codec brand share the `ftyp` box.
    mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64
    generic = b"\x00\x00\x00\x14ftypmif1\x00\x00\x00\x00mif1" + b"\x00" * 64
    for data in (mp4, generic):
        assert sniff_format(data) is None
        assert rejected(data).reason == "unsupported_format"


def test_heic_claiming_huge_size_is_refused_before_decoding(encode: Encoder) -> None:
    data = encode(Image.new("RGB", (64, 48), (10, 200, 10)), "HEIF")
    with pytest.raises(TooManyPixels):
        open_image(data, max_pixels=64 * 48 - 1)


def test_corrupt_jpeg_body(make_image: ImageFactory, encode: Encoder) -> None:
    data = bytearray(encode(make_image("RGB", (64, 64)), "JPEG"))
    data[200:-2] = bytes(len(data) - 202)  # keep SOI...header and EOI, zero the scan
    data[2:4] = b"\xff\xff"  # and break the first marker
    assert rejected(bytes(data)).reason in ("corrupt", "truncated")


def test_png_claiming_huge_size_is_refused_before_decoding() -> None:
    error = rejected(png_with_header(100_000, 100_000))
    assert isinstance(error, TooManyPixels) and error.reason == "too_many_pixels"


def test_pixel_limit_is_the_argument(make_image: ImageFactory, encode: Encoder) -> None:
    data = encode(make_image("RGB", (100, 100)), "PNG")
    assert isinstance(rejected(data, max_pixels=9_999), TooManyPixels)
    assert open_image(data, max_pixels=10_000).size == (100, 100)


def test_pillow_bomb_error_is_translated() -> None:
    # Over twice Pillow's own MAX_IMAGE_PIXELS: Pillow raises DecompressionBombError, which must not escape.
    assert isinstance(rejected(png_with_header(20_000, 20_000), max_pixels=10**10), TooManyPixels)
    # between once and twice the limit Pillow only warns; the warning must not escape either
    assert isinstance(rejected(png_with_header(10_000, 10_000), max_pixels=10**10), TooManyPixels)


def test_gif_claiming_huge_screen_is_refused() -> None:
    header = b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00"
    frame = b"\x2c" + struct.pack("<HHHH", 0, 0, 65535, 65535) + b"\x00" + b"\x02\x02\x44\x01\x00" + b";"
    assert isinstance(rejected(header + frame), TooManyPixels)


def test_animated_gif_gives_first_frame(encode: Encoder) -> None:
    frames = [Image.new("RGB", (20, 20), color) for color in ("red", "blue", "green")]
    buffer = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    img = to_rgb(open_image(buffer, max_pixels=LIMIT))
    assert img.getpixel((10, 10)) == (255, 0, 0)


def test_exif_orientation_is_applied(make_image: ImageFactory, encode: Encoder) -> None:
    img = make_image("RGB", (40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(img, "JPEG", exif=exif.tobytes())
    assert open_image(data, max_pixels=LIMIT).size == (20, 40)


def test_to_rgb_composites_alpha_on_white() -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    rgb = to_rgb(rgba)
    assert rgb.mode == "RGB"
    assert rgb.getpixel((1, 1)) == (255, 255, 255)
    assert rgb.getpixel((0, 0)) == (0, 0, 255)
    assert to_rgb(Image.new("LA", (2, 2), (0, 128))).getpixel((0, 0)) == (127, 127, 127)


def test_to_rgb_palette_with_transparency(encode: Encoder) -> None:
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.putpixel((0, 0), 1)
    reopened = open_image(encode(img, "PNG", transparency=0), max_pixels=LIMIT)
    rgb = to_rgb(reopened)
    assert rgb.getpixel((0, 0)) == (255, 0, 0)
    assert rgb.getpixel((2, 2)) == (255, 255, 255)


def test_to_rgb_scales_16_bit_instead_of_clipping(encode: Encoder) -> None:
    values = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    img = open_image(encode(Image.fromarray(values), "PNG"), max_pixels=LIMIT)
    assert img.mode.startswith("I")
    assert [to_rgb(img).getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
    as_int = Image.fromarray(values.astype(np.int32))
    assert as_int.mode == "I"
    assert to_rgb(as_int).getpixel((1, 0)) == (128, 128, 128)


def test_to_rgb_float_and_other_modes(make_image: ImageFactory) -> None:
    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert np.asarray(to_rgb(floats))[0, :, 0].tolist() == [0, 128, 255]
    wide = Image.fromarray(np.array([[-10.0, 0.0, 10.0]], dtype=np.float32))
    assert np.asarray(to_rgb(wide))[0, :, 0].tolist() == [0, 128, 255]
    source = make_image("RGB", (16, 16))
    for mode in ("L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "PA", "I;16B"):
        converted = to_rgb(source.convert(mode) if mode not in ("PA", "I;16B") else _special(mode))
        assert converted.mode == "RGB" and converted.size in ((16, 16), (4, 4)), mode
    # a colour survives CMYK and YCbCr round trips
    red = Image.new("RGB", (2, 2), (200, 30, 40))
    for mode in ("CMYK", "YCbCr"):
        assert np.abs(np.asarray(to_rgb(red.convert(mode)), dtype=int) - [200, 30, 40]).max() <= 2


def _special(mode: str) -> Image.Image:
    if mode == "PA":
        return Image.new("PA", (4, 4), (1, 255))
    return Image.new("I;16B", (4, 4), 40000)


def test_to_rgb_keeps_rgb_as_is(make_image: ImageFactory) -> None:
    img = make_image("RGB")
    assert to_rgb(img) is img


_SAMPLES: dict[str, bytes] = {}


def _sample(fmt: str) -> bytes:
    if fmt not in _SAMPLES:
        rng = np.random.default_rng(7)
        _SAMPLES[fmt] = encode_image(
            Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), "RGB"), fmt
        )
    return _SAMPLES[fmt]


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fmt=st.sampled_from(FORMATS),
    cut=st.floats(min_value=0.0, max_value=1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=8),
)
def test_mangled_images_raise_only_project_errors(
    fmt: str, cut: float, flips: list[tuple[float, int]]
) -> None:
    data = bytearray(_sample(fmt))
    for where, value in flips:
        data[int(where * (len(data) - 1))] = value
    data = data[: max(1, int(len(data) * cut))] if cut < 1.0 else data
    started = time.perf_counter()
    try:
        img = open_image(bytes(data), max_pixels=1_000_000)
    except ImageRejected:
        pass
    else:
        assert to_rgb(img).mode == "RGB"
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("fmt", ["AVIF", "HEIF"])
def test_mangled_avif_and_heif_are_refused_not_crashed(fmt: str) -> None:
    """libavif and libheif report broken files as RuntimeError: a fixed set of mangled files (found by the
    fuzz test above) must come back as the project's errors, with the reason set."""
    rng = np.random.default_rng(11)
    original = _sample(fmt)
    reasons = set()
    for _ in range(300):
        data = bytearray(original)
        for where in rng.integers(0, len(data), rng.integers(1, 9)):
            data[where] = rng.integers(0, 256)
        if rng.random() < 0.5:
            data = data[: max(1, int(len(data) * rng.random()))]
        try:
            img = open_image(bytes(data), max_pixels=1_000_000)
        except ImageRejected as e:
            reasons.add(e.reason)
        else:
            assert to_rgb(img).mode == "RGB"
    assert {"corrupt", "truncated"} <= reasons
