"""Preprocessing parity: Pillow + numpy gives what open_clip's eval transform gives (max abs diff <= 1e-4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imagesearch.imaging import to_rgb
from imagesearch.model.preprocess import PreprocessConfig, preprocess, preprocess_batch

open_clip = pytest.importorskip("open_clip")
pytestmark = pytest.mark.export

ImageFactory = Callable[..., Image.Image]
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)

# (mode, (width, height)): small and large, square, portrait, landscape, extreme, odd sizes.
IMAGES = [
    ("RGB", (64, 64)),
    ("RGB", (224, 224)),
    ("RGB", (640, 480)),
    ("RGB", (480, 640)),
    ("RGB", (1000, 333)),
    ("RGB", (333, 1000)),
    ("RGB", (17, 23)),
    ("RGB", (1, 1)),
    ("RGB", (3, 200)),
    ("RGB", (301, 299)),
    ("RGB", (65, 64)),
    ("RGB", (2048, 1536)),
    ("L", (120, 80)),
    ("L", (80, 121)),
    ("RGBA", (96, 64)),
    ("LA", (64, 96)),
    ("P", (150, 100)),
    ("CMYK", (90, 90)),
    ("I;16", (128, 96)),
    ("1", (70, 50)),
    ("YCbCr", (100, 64)),
    ("RGB", (63, 1)),
]
CONFIGS: dict[str, dict[str, Any]] = {
    "shortest-bicubic-64": {"size": 64},
    "shortest-bilinear-224": {"size": 224, "interpolation": "bilinear"},
    "squash-bicubic-64": {"size": 64, "resize_mode": "squash"},
    "longest-fill-64": {"size": 64, "resize_mode": "longest", "fill_color": 0},
    "longest-fill-white-48": {"size": 48, "resize_mode": "longest", "fill_color": 255},
    "shortest-non-square": {"size": (48, 64)},
    "longest-non-square": {"size": (64, 40), "resize_mode": "longest"},
    "squash-non-square-bilinear": {"size": (40, 56), "resize_mode": "squash", "interpolation": "bilinear"},
}


def _ours(cfg: dict[str, Any]) -> PreprocessConfig:
    size = cfg["size"]
    return PreprocessConfig(
        size=(size, size) if isinstance(size, int) else tuple(size),
        mean=MEAN,
        std=STD,
        interpolation=cfg.get("interpolation", "bicubic"),
        resize_mode=cfg.get("resize_mode", "shortest"),
        fill_color=cfg.get("fill_color", 0),
    )


def _theirs(cfg: dict[str, Any]) -> Callable[[Image.Image], Any]:
    return open_clip.image_transform(
        cfg["size"],
        is_train=False,
        mean=MEAN,
        std=STD,
        resize_mode=cfg.get("resize_mode", "shortest"),
        interpolation=cfg.get("interpolation", "bicubic"),
        fill_color=cfg.get("fill_color", 0),
    )


def test_enough_images_and_modes() -> None:
    assert len(IMAGES) >= 20 and len({mode for mode, _ in IMAGES}) >= 8


@pytest.mark.parametrize("name", list(CONFIGS))
def test_preprocess_matches_open_clip(name: str, make_image: ImageFactory) -> None:
    cfg = CONFIGS[name]
    ours, theirs = _ours(cfg), _theirs(cfg)
    worst = 0.0
    for seed, (mode, size) in enumerate(IMAGES):
        img = make_image(mode, size, seed=seed)
        actual = preprocess(img, ours)
        # open_clip converts after resizing with a plain convert("RGB"); the runtime defines the RGB image
        # (alpha on white, 16-bit scaled), so open_clip gets that same RGB image
        expected = theirs(to_rgb(img)).numpy()
        assert actual.shape == expected.shape == (3, *ours.size)
        assert actual.dtype == np.float32
        worst = max(worst, float(np.abs(actual - expected).max()))
        if mode in ("RGB", "L"):  # for these, open_clip on the original image gives the same pixels
            np.testing.assert_allclose(actual, theirs(img).numpy(), rtol=0, atol=1e-4)
    assert worst <= 1e-4


def test_batch_is_the_stack_of_singles(make_image: ImageFactory) -> None:
    cfg = _ours(CONFIGS["shortest-bicubic-64"])
    images = [make_image("RGB", (50 + i, 70), seed=i) for i in range(3)]
    batch = preprocess_batch(images, cfg)
    assert batch.shape == (3, 3, 64, 64)
    for i, img in enumerate(images):
        np.testing.assert_array_equal(batch[i], preprocess(img, cfg))


@pytest.mark.parametrize("size", [(400, 3), (3, 400), (20000, 3), (3, 20000)])
def test_extreme_aspect_ratios(size: tuple[int, int], make_image: ImageFactory) -> None:
    # a 3 x 20000 strip would become 64 x 426666 pixels before the crop; only the crop is resampled,
    # which is the same picture up to Pillow's rounding in its box path
    cfg = {"size": 64}
    img = make_image("RGB", size)
    actual = preprocess(img, _ours(cfg))
    assert actual.shape == (3, 64, 64)
    expected = _theirs(cfg)(img).numpy()
    difference = np.abs(actual - expected)
    if max(size) / min(size) < 1000:
        assert difference.max() <= 1e-4
    else:
        assert difference.mean() <= 2 / 255 / min(STD)
