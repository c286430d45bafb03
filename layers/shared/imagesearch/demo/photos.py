"""Photo-like test pictures: what the demo gallery's flat shapes are not (gradients, sensor noise, sizes
of real cameras), for the decode parity tests and bench/decode.py."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def photo_jpeg(width: int, height: int, *, seed: int = 0, quality: int = 85, **params: object) -> bytes:
    """A photo-like JPEG: smooth gradients, sensor-like noise and a dozen flat shapes; `params` go to
    Pillow's JPEG writer (exif=, progressive=...)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [x / width * 200 + 30, y / height * 180 + 40, (x + y) / (width + height) * 150 + 60], axis=-1
    )
    base += rng.normal(0, 12, (height, width, 3)).astype(np.float32)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(width // 20, width // 5))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((cx - r, cy - r, cx + r, cy + r), fill=color)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, **params)
    return out.getvalue()
