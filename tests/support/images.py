"""Test factories for image bytes: `make_image(color="red", fmt="JPEG")`."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import Image, ImageDraw

COLORS = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 60, 220),
    "yellow": (240, 210, 30),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
}


def make_picture(
    *, color: str = "red", shape: str = "circle", size: tuple[int, int] = (96, 64), background: str = "grey"
) -> Image.Image:
    """An RGB picture of one coloured shape on a plain background."""
    img = Image.new("RGB", size, COLORS[background])
    draw = ImageDraw.Draw(img)
    w, h = size
    box = (w // 4, h // 4, 3 * w // 4, 3 * h // 4)
    if shape == "circle":
        draw.ellipse(box, fill=COLORS[color])
    elif shape == "square":
        draw.rectangle(box, fill=COLORS[color])
    else:
        draw.polygon([(w // 2, h // 4), (3 * w // 4, 3 * h // 4), (w // 4, 3 * h // 4)], fill=COLORS[color])
    return img


def encode(img: Image.Image, fmt: str = "PNG", **params: Any) -> bytes:
    """The image saved in a format (Pillow's name; "HEIF" writes HEIC through pillow-heif), as bytes."""
    out = io.BytesIO()
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.from_pillow(img if img.mode in ("RGB", "RGBA") else img.convert("RGB")).save(
            out, format="HEIF", **params
        )
    else:
        img.save(out, format=fmt, **params)
    return out.getvalue()


def make_image(*, fmt: str = "PNG", **picture: Any) -> bytes:
    """Encoded bytes of `make_picture(**picture)`."""
    return encode(make_picture(**picture), fmt)


def png_header_claiming(width: int, height: int) -> bytes:
    """A small PNG file whose header claims a huge image: a decompression bomb (its data would inflate)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 65536, 9)  # the first rows of zeros; inflating it all would take 30 GB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def demo_shape(
    *, color: str = "red", shape: str = "circle", background: str = "grey", side: int = 256
) -> bytes:
    """PNG bytes of one large shape in the middle of a plain background, drawn as the demo gallery draws
    (imagesearch.demo.shapes: the demo model's own colours, shapes and backgrounds)."""
    from imagesearch.demo.shapes import BACKGROUNDS, COLORS, Figure, Scene, render

    figure = Figure(
        shape=shape, color=color, size="large", x=0.5, y=0.5, radius=0.3, rotation=0.0, rgb=COLORS[color]
    )
    scene = Scene(
        seed=0,
        index=0,
        main=figure,
        background=background,
        background_rgb=BACKGROUNDS[background],
        gradient=(0.0, 0.0),
        noise=0.0,
    )
    return encode(render(scene, side))
