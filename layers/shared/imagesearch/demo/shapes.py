"""Labelled pictures of coloured shapes with captions and tags, deterministic by (seed, index).

A sample's attributes (its `Scene`) come from a random generator seeded with (seed, index) alone, so
sample i is the same whatever the count or the image size, and geometry is kept as fractions of the side
and drawn oversampled: a 64 px training image and a 256 px gallery image of one scene are the same
picture. Only Pillow and numpy are needed (no torch): tests, benchmarks and the demo gallery use this.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

from imagesearch.demo.geometry import EXTENT, outline

Rgb = tuple[int, int, int]
Size = Literal["small", "large"]

# Everything below (and in geometry.py) is the demo model's training data: a change means retraining the
# committed bundle and re-measuring its figures (docs/demo-model.md).

SHAPES = ("circle", "square", "triangle", "star", "hexagon", "cross")
# Object colours, picked far apart in hue or lightness; none is also a background name.
COLORS: dict[str, Rgb] = {
    "red": (214, 38, 38),
    "orange": (245, 135, 20),
    "yellow": (240, 215, 35),
    "green": (40, 160, 60),
    "cyan": (30, 200, 215),
    "blue": (35, 70, 215),
    "purple": (135, 50, 185),
    "pink": (245, 125, 190),
}
BACKGROUNDS: dict[str, Rgb] = {
    "grey": (128, 128, 128),
    "white": (238, 238, 238),
    "black": (22, 22, 22),
    "beige": (214, 192, 140),
}
SIZES: tuple[Size, ...] = ("small", "large")

# Radius as a fraction of the side per size class: the gap keeps the classes apart, and a
# small shape stays >= 9 px across its radius at 64 px so a hexagon still has corners.
_RADIUS: dict[Size, tuple[float, float]] = {"small": (0.14, 0.19), "large": (0.28, 0.36)}
_COLOR_JITTER = 14  # per channel: a colour name covers a range of shades, not one exact value
_BACKGROUND_JITTER = 10
_MAX_GRADIENT = 24.0  # brightness change across the picture, in 0-255 levels (uneven lighting)
_MAX_NOISE = 10.0  # sigma of per-pixel Gaussian noise, in 0-255 levels
_OVERSAMPLE = 4  # drawn at 4x and downsampled: antialiased edges at every size
_MARGIN = 0.03
_NOISE_STREAM = 1  # a separate random stream for pixel noise, so the image size does not shift attributes


@dataclass(frozen=True, kw_only=True)
class Figure:
    """One drawn object: its labels and geometry (centre and radius as fractions of the side)."""

    shape: str
    color: str
    size: Size
    x: float
    y: float
    radius: float
    rotation: float  # degrees
    rgb: Rgb  # the jittered shade actually drawn

    @property
    def label(self) -> str:
        """Colour and shape, the pair the quality tests query: "red circle"."""
        return f"{self.color} {self.shape}"


@dataclass(frozen=True, kw_only=True)
class Scene:
    """Everything a picture shows, as ground truth for tests and benchmarks."""

    seed: int
    index: int
    main: Figure
    background: str
    background_rgb: Rgb
    gradient: tuple[float, float]  # brightness change across x and across y, in levels
    noise: float  # sigma of the pixel noise, in levels
    companion: Figure | None = None  # an optional second, small object of another shape and colour

    @property
    def figures(self) -> tuple[Figure, ...]:
        """The objects in drawing order."""
        return (self.main,) if self.companion is None else (self.main, self.companion)

    @property
    def caption(self) -> str:
        """The canonical caption: "a small red circle on a grey background"."""
        objects = " and ".join(with_article(f"{f.size} {f.color} {f.shape}") for f in self.figures)
        return f"{objects} on {with_article(self.background)} background"

    @property
    def title(self) -> str:
        """A short title: "Small red circle" (", with a blue star" when there is a companion)."""
        title = f"{self.main.size} {self.main.color} {self.main.shape}".capitalize()
        if self.companion is not None:
            title += f" with {with_article(self.companion.label)}"
        return title

    @property
    def tags(self) -> tuple[str, ...]:
        """Shape, colour and size of each object, then "<name> background"; no duplicates."""
        tags: list[str] = []
        for figure in self.figures:
            for tag in (figure.shape, figure.color, figure.size):
                if tag not in tags:
                    tags.append(tag)
        tags.append(f"{self.background} background")
        return tuple(tags)


@dataclass(frozen=True)
class ShapeSample:
    """A scene and its picture; the labels and texts below are the scene's (of its main object)."""

    scene: Scene
    image: Image.Image

    @property
    def shape(self) -> str:
        return self.scene.main.shape

    @property
    def color(self) -> str:
        return self.scene.main.color

    @property
    def size(self) -> Size:
        return self.scene.main.size

    @property
    def background(self) -> str:
        return self.scene.background

    @property
    def caption(self) -> str:
        return self.scene.caption

    @property
    def title(self) -> str:
        return self.scene.title

    @property
    def tags(self) -> tuple[str, ...]:
        return self.scene.tags


def make_scene(index: int, *, seed: int, companion_rate: float = 0.0) -> Scene:
    """The attributes of sample `index` of the stream `seed`; with `companion_rate`, maybe a second object."""
    rng = np.random.default_rng([seed, index])
    main = _figure(
        rng,
        shape=SHAPES[rng.integers(len(SHAPES))],
        color=list(COLORS)[rng.integers(len(COLORS))],
        size=SIZES[rng.integers(len(SIZES))],
    )
    background = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    background_rgb = _jitter(rng, BACKGROUNDS[background], _BACKGROUND_JITTER)
    gradient = (float(rng.uniform(-1, 1) * _MAX_GRADIENT), float(rng.uniform(-1, 1) * _MAX_GRADIENT))
    noise = float(rng.uniform(0, _MAX_NOISE))
    # drawn last so the main object, background and noise do not depend on companion_rate
    companion = None
    if rng.random() < companion_rate:
        companion = _companion(rng, main)
    return Scene(
        seed=seed,
        index=index,
        main=main,
        background=background,
        background_rgb=background_rgb,
        gradient=gradient,
        noise=noise,
        companion=companion,
    )


def render(scene: Scene, size: int = 64) -> Image.Image:
    """Draw a scene as an RGB image of `size` x `size` pixels."""
    if size < 8:
        raise ValueError(f"image size must be at least 8 px, got {size}")
    side = size * _OVERSAMPLE
    canvas = Image.new("RGB", (side, side), scene.background_rgb)
    draw = ImageDraw.Draw(canvas)
    for figure in scene.figures:
        _draw(draw, figure, side)
    pixels = np.asarray(canvas.resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    pixels += (scene.gradient[0] * ramp[None, :] + scene.gradient[1] * ramp[:, None])[..., None]
    if scene.noise > 0:
        noise_rng = np.random.default_rng([scene.seed, scene.index, _NOISE_STREAM])
        pixels += noise_rng.normal(0.0, scene.noise, pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


def sample(index: int, *, seed: int, size: int = 64, companion_rate: float = 0.0) -> ShapeSample:
    """Sample `index` of the stream `seed`, drawn at `size` px."""
    scene = make_scene(index, seed=seed, companion_rate=companion_rate)
    return ShapeSample(scene, render(scene, size))


def iter_samples(
    count: int, *, seed: int, size: int = 64, start: int = 0, companion_rate: float = 0.0
) -> Iterator[ShapeSample]:
    """Samples start, start+1, ... of the stream `seed`, drawn one at a time."""
    for index in range(start, start + count):
        yield sample(index, seed=seed, size=size, companion_rate=companion_rate)


def generate(
    count: int, *, seed: int, size: int = 64, start: int = 0, companion_rate: float = 0.0
) -> list[ShapeSample]:
    """`count` samples of the stream `seed` (the first `n` are the same for any count >= n)."""
    return list(iter_samples(count, seed=seed, size=size, start=start, companion_rate=companion_rate))


def caption_variants(scene: Scene | ShapeSample) -> list[str]:
    """Every way the training data words this scene: canonical first, then short and long forms."""
    scene = scene.scene if isinstance(scene, ShapeSample) else scene
    forms = [scene.caption]
    if scene.companion is not None:
        first, second = scene.main.label, scene.companion.label
        forms += [
            f"{with_article(first)} and {with_article(second)}",
            f"{with_article(second)} and {with_article(first)}",
            f"{first} and {second}",
        ]
    for figure in scene.figures:
        forms += _figure_forms(figure, scene.background)
    return list(dict.fromkeys(forms))


def partial_captions(scene: Scene | ShapeSample) -> list[str]:
    """Captions naming only a colour or only a shape ("something red", "a star")."""
    scene = scene.scene if isinstance(scene, ShapeSample) else scene
    forms: list[str] = []
    for figure in scene.figures:
        forms += [f"{with_article(figure.color)} shape", f"something {figure.color}", figure.color]
        forms += [with_article(figure.shape), figure.shape]
    return list(dict.fromkeys(forms))


def _figure_forms(figure: Figure, background: str) -> list[str]:
    c, s, z, b = figure.color, figure.shape, figure.size, background
    return [
        f"{c} {s}",
        with_article(f"{c} {s}"),
        f"the {c} {s}",
        f"{z} {c} {s}",
        with_article(f"{z} {c} {s}"),
        f"{with_article(s)} that is {c}",
        f"{s}, {c}",
        f"a picture of {with_article(f'{c} {s}')}",
        f"{with_article(f'{c} {s}')} on {b}",
        f"{c} {s} on {with_article(b)} background",
        f"{with_article(f'{z} {c} {s}')} on {b}",
    ]


def with_article(phrase: str) -> str:
    """The phrase with "a" or "an" in front ("an orange star")."""
    return f"{'an' if phrase[0] in 'aeiou' else 'a'} {phrase}"


def _jitter(rng: np.random.Generator, rgb: Rgb, amount: int) -> Rgb:
    shade = np.clip(np.asarray(rgb) + rng.integers(-amount, amount + 1, 3), 0, 255)
    return int(shade[0]), int(shade[1]), int(shade[2])


def _figure(rng: np.random.Generator, *, shape: str, color: str, size: Size) -> Figure:
    radius = float(rng.uniform(*_RADIUS[size]))
    low = min(radius * EXTENT[shape] + _MARGIN, 0.5)
    x, y = float(rng.uniform(low, 1 - low)), float(rng.uniform(low, 1 - low))
    return Figure(
        shape=shape,
        color=color,
        size=size,
        x=x,
        y=y,
        radius=radius,
        rotation=float(rng.uniform(0, 360)) if shape != "circle" else 0.0,
        rgb=_jitter(rng, COLORS[color], _COLOR_JITTER),
    )


def _companion(rng: np.random.Generator, main: Figure) -> Figure | None:
    """A small object of another shape and colour that does not touch the main one (None if none fits)."""
    shape = rng.choice([s for s in SHAPES if s != main.shape])
    color = rng.choice([c for c in COLORS if c != main.color])
    for _ in range(20):
        figure = _figure(rng, shape=str(shape), color=str(color), size="small")
        apart = figure.radius * EXTENT[figure.shape] + main.radius * EXTENT[main.shape] + _MARGIN
        if math.hypot(figure.x - main.x, figure.y - main.y) > apart:
            return figure
    return None


def _draw(draw: ImageDraw.ImageDraw, figure: Figure, side: int) -> None:
    cx, cy, r = figure.x * side, figure.y * side, figure.radius * side
    if figure.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=figure.rgb)
    else:
        draw.polygon(outline(figure.shape, cx, cy, r, figure.rotation), fill=figure.rgb)
