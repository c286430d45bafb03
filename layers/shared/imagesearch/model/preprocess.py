"""Image preprocessing with Pillow + numpy, equal to open_clip's eval transform (tested for parity).

open_clip (3.x) builds, for inference: a resize (by `resize_mode`), a centre crop (or pad), convert("RGB"),
ToTensor and Normalize. The same Pillow calls are made here in the same order, so the pixels are identical;
the only deliberate difference is that the image is made RGB first, by `imaging.to_rgb` (alpha on white,
16-bit rescaled), where open_clip would call convert("RGB") after resizing.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from imagesearch.imaging import to_rgb

Interpolation = Literal["bicubic", "bilinear"]
ResizeMode = Literal["shortest", "longest", "squash"]

_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}

# The intermediate "resize shortest side, then crop" image of a long, thin picture is huge (a 1 x 60000
# strip becomes 224 x 13 million pixels). Above this size only the region that survives the crop is
# resampled (Pillow's resize box): the same picture, but Pillow's box path rounds differently, so pixels
# may differ from open_clip by a few levels. Below it (aspect ratios up to ~300:1 at 224 px) results are
# identical.
_MAX_INTERMEDIATE_PIXELS = 16_000_000


@dataclass(frozen=True, kw_only=True)
class PreprocessConfig:
    """What the bundle's manifest says about the image transform."""

    size: tuple[int, int]  # (height, width), as open_clip's PreprocessCfg
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: Interpolation = "bicubic"
    resize_mode: ResizeMode = "shortest"
    fill_color: int = 0


def preprocess(img: Image.Image, cfg: PreprocessConfig) -> np.ndarray:
    """One image (any mode) -> float32 array (3, height, width), normalised as the model expects."""
    return to_array(resize_and_crop(to_rgb(img), cfg), cfg)


def preprocess_batch(images: Sequence[Image.Image], cfg: PreprocessConfig) -> np.ndarray:
    """Images -> float32 array (n, 3, height, width)."""
    out = np.empty((len(images), 3, *cfg.size), dtype=np.float32)
    for i, img in enumerate(images):
        out[i] = preprocess(img, cfg)
    return out


def to_array(img: Image.Image, cfg: PreprocessConfig) -> np.ndarray:
    """ToTensor + Normalize in float32, operation for operation as torchvision does them: each of the 256
    values of each channel is computed once (`_normalised_values`) and the pixels look theirs up, in one
    pass and with the same float32 results."""
    pixels = np.asarray(img, dtype=np.uint8)
    table = _normalised_values(cfg.mean, cfg.std)
    out = np.empty((3, *pixels.shape[:2]), dtype=np.float32)
    for channel in range(3):
        np.take(table[channel], pixels[..., channel], out=out[channel])
    return out


@functools.lru_cache(maxsize=8)
def _normalised_values(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(3, 256) float32: (v / 255 - mean) / std for every 8-bit value v, as torchvision computes it."""
    values = np.arange(256, dtype=np.float32) / np.float32(255)
    mean_ = np.asarray(mean, dtype=np.float32)[:, None]
    std_ = np.asarray(std, dtype=np.float32)[:, None]
    table = (values[None, :] - mean_) / std_
    table.flags.writeable = False
    return table


def resize_and_crop(img: Image.Image, cfg: PreprocessConfig) -> Image.Image:
    """The geometric part of open_clip's eval transform, on an RGB image."""
    target_h, target_w = cfg.size
    width, height = img.size
    resample = _RESAMPLE[cfg.interpolation]
    if cfg.resize_mode == "squash":
        return _resize(img, (target_w, target_h), resample)
    if cfg.resize_mode == "longest":
        new_h, new_w = _keep_ratio_size(height, width, target_h, target_w, longest=True)
        return _crop_or_pad(_resize(img, (new_w, new_h), resample), target_h, target_w, cfg.fill_color)
    if target_h == target_w:
        # torchvision Resize(int): shortest side to size, the other truncated with int()
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = target_h, int(target_h * long / short)
        new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    else:
        # open_clip uses ResizeKeepRatio for non-square sizes, which is always bicubic
        new_h, new_w = _keep_ratio_size(height, width, target_h, target_w, longest=False)
        resample = Image.Resampling.BICUBIC
    if new_w * new_h > _MAX_INTERMEDIATE_PIXELS:
        return _resize_crop_region(img, (new_w, new_h), (target_w, target_h), resample)
    return _crop_or_pad(_resize(img, (new_w, new_h), resample), target_h, target_w, fill=0)


def _keep_ratio_size(
    height: int, width: int, target_h: int, target_w: int, *, longest: bool
) -> tuple[int, int]:
    """open_clip's ResizeKeepRatio.get_params without the random parts; (height, width)."""
    ratio_h, ratio_w = height / target_h, width / target_w
    ratio = max(ratio_h, ratio_w) if longest else min(ratio_h, ratio_w)
    # max(1, ...): open_clip would fail on a side rounded to 0 (a 1 x 1000 strip); we keep one pixel
    return max(1, round(height / ratio)), max(1, round(width / ratio))


def _resize(img: Image.Image, size: tuple[int, int], resample: Image.Resampling) -> Image.Image:
    """torchvision's PIL resize: a no-op when the size already matches."""
    return img if img.size == size else img.resize(size, resample)


def _resize_crop_region(
    img: Image.Image, resized: tuple[int, int], crop: tuple[int, int], resample: Image.Resampling
) -> Image.Image:
    """Resample only the centre crop of the would-be resized image (`resized` and `crop` are (w, h))."""
    (new_w, new_h), (crop_w, crop_h) = resized, crop
    left, top = int(round((new_w - crop_w) / 2.0)), int(round((new_h - crop_h) / 2.0))
    scale_x, scale_y = img.width / new_w, img.height / new_h
    box = (left * scale_x, top * scale_y, (left + crop_w) * scale_x, (top + crop_h) * scale_y)
    return img.resize((crop_w, crop_h), resample, box=box)


def _crop_or_pad(img: Image.Image, crop_h: int, crop_w: int, fill: int) -> Image.Image:
    """torchvision's center_crop / open_clip's center_crop_or_pad on a PIL image."""
    width, height = img.size
    if crop_w > width or crop_h > height:
        border = (
            (crop_w - width) // 2 if crop_w > width else 0,
            (crop_h - height) // 2 if crop_h > height else 0,
            (crop_w - width + 1) // 2 if crop_w > width else 0,
            (crop_h - height + 1) // 2 if crop_h > height else 0,
        )
        img = ImageOps.expand(img, border=border, fill=(fill, fill, fill))
        width, height = img.size
        if (width, height) == (crop_w, crop_h):
            return img
    top = int(round((height - crop_h) / 2.0))
    left = int(round((width - crop_w) / 2.0))
    return img.crop((left, top, left + crop_w, top + crop_h))
