"""Pictures with rendered words, for the OCR tests and bench/ocr.py: a font, a size, an angle and a
background (plain, gradient, noisy, or photo-like from demo/photos.py)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from imagesearch.demo.photos import photo_jpeg

BACKGROUNDS = ("plain", "gradient", "noisy", "photo")
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))


@dataclass(frozen=True)
class Placed:
    """A word on a picture: where it was drawn (its box before rotation, in picture pixels)."""

    word: str
    box: tuple[int, int, int, int]


def font(path: Path | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The font at `path`, or Pillow's built-in one (no system fonts needed) when None."""
    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(str(path), size)


def system_fonts() -> list[Path]:
    """The DejaVu and Liberation TrueType fonts installed here (sorted), if any."""
    return sorted(p for d in FONT_DIRS if d.is_dir() for p in d.glob("*.ttf"))


def background(kind: str, width: int, height: int, *, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    if kind == "plain":
        shade = tuple(int(c) for c in rng.integers(200, 256, 3))
        return Image.new("RGB", (width, height), shade)
    if kind == "gradient":
        x = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
        y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        a, b = rng.integers(150, 256, 3), rng.integers(150, 256, 3)
        pixels = a * (1 - (x + y) / 2) + b * (x + y) / 2
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if kind == "noisy":
        base = rng.integers(170, 230, 3).astype(np.float32)
        pixels = base + rng.normal(0, 25, (height, width, 3))
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if kind == "photo":
        return Image.open(io.BytesIO(photo_jpeg(width, height, seed=seed))).convert("RGB")
    raise ValueError(f"unknown background {kind!r}")


def _ink_for(patch: Image.Image) -> tuple[int, int, int]:
    """Black on light ground, white on dark: the ground's mean luminance under the word decides."""
    luminance = float(np.asarray(patch.convert("L"), dtype=np.float32).mean())
    return (0, 0, 0) if luminance > 110 else (255, 255, 255)


def draw_words(
    picture: Image.Image,
    words: list[str],
    *,
    face: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    angle: float = 0.0,
    seed: int = 0,
) -> list[Placed]:
    """Draw each word on its own band of the picture (top to bottom), rotated by `angle` degrees."""
    rng = np.random.default_rng(seed)
    width, height = picture.size
    band = height // max(len(words), 1)
    placed = []
    for i, word in enumerate(words):
        left, top, right, bottom = face.getbbox(word)
        w, h = int(right - left) + 8, int(bottom - top) + 8
        layer = Image.new("L", (w, h), 0)
        ImageDraw.Draw(layer).text((4 - left, 4 - top), word, font=face, fill=255)
        if angle:
            layer = layer.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
        lw, lh = layer.size
        x = int(rng.integers(0, max(width - lw, 1)))
        y = i * band + int(rng.integers(0, max(band - lh, 1)))
        ink = _ink_for(picture.crop((x, y, x + lw, y + lh)))
        picture.paste(Image.new("RGB", layer.size, ink), (x, y), layer)
        placed.append(Placed(word=word, box=(x, y, x + lw, y + lh)))
    return placed


def text_picture(
    words: list[str],
    *,
    size: int = 32,
    font_path: Path | None = None,
    angle: float = 0.0,
    kind: str = "plain",
    width: int = 640,
    height: int = 480,
    seed: int = 0,
) -> Image.Image:
    """A picture holding `words`, one per band, at `size` px (the font's em) on a `kind` background."""
    picture = background(kind, width, height, seed=seed)
    draw_words(picture, words, face=font(font_path, size), angle=angle, seed=seed)
    return picture


def png_bytes(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()
