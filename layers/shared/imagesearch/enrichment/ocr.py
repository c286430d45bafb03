"""Printed text in pictures (signs, screenshots, documents): RapidOCR's ONNX models on onnxruntime.

rapidocr-onnxruntime carries PP-OCRv4's detection, orientation and recognition models inside its wheel;
it is installed only where OCR runs (the OCR function's container image, and `make install` locally, from
functions/ocr/requirements.txt), so it is imported when the first picture is read, never at module level:
the embed function imports this package without it. An engine loads its models once (the runtime keeps one
per process: `Runtime.ocr_step`).
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from typing import Any

from PIL import Image

MAX_TEXT_CHARS = 20_000  # the column's limit (migration 0008)
# The longer side the picture is reduced to before detection: RapidOCR's own limit, applied first here so a
# 64 Mpx original is not copied into a 200 MB array (text smaller than this keeps is lost either way).
MAX_SIDE = 2000
MIN_SIDE = 8  # smaller than this holds no legible text
DEFAULT_MIN_SCORE = 0.5


@dataclass(frozen=True)
class TextLine:
    """One recognised line (or word) and the recogniser's confidence in it (0..1)."""

    text: str
    score: float


def available() -> bool:
    """Whether the OCR models are installed in this environment."""
    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


class OcrEngine:
    """Image -> text lines. `threads`: onnxruntime's intra-op threads (0: its default)."""

    def __init__(
        self,
        *,
        min_score: float = DEFAULT_MIN_SCORE,
        threads: int = 0,
        max_side: int = MAX_SIDE,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.min_score = min_score
        self.threads = threads
        self.max_side = max_side
        self._options = dict(options or {})
        self._engine: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        with self._lock:
            if self._engine is None:
                from rapidocr_onnxruntime import RapidOCR  # the OCR layer only: see the module docstring

                threads = self.threads if self.threads > 0 else -1
                self._engine = RapidOCR(
                    text_score=self.min_score,
                    intra_op_num_threads=threads,
                    inter_op_num_threads=threads,
                    **self._options,
                )
            return self._engine

    def read(self, image: Image.Image) -> list[TextLine]:
        """The text lines of a picture, top to bottom, each at least `min_score` sure; [] when none."""
        if min(image.size) < MIN_SIDE:
            return []
        result, _ = self._loaded()(fitted(image, self.max_side))
        lines = []
        for _box, text, score in result or ():
            text = " ".join(str(text).split())
            if text and float(score) >= self.min_score:
                lines.append(TextLine(text=text, score=float(score)))
        return lines


def fitted(image: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """The picture as the engine reads it: RGB, its longer side at most `max_side`."""
    image = image.convert("RGB")
    if max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def joined_text(lines: list[TextLine]) -> str | None:
    """The lines as the stored text (one per line, at most MAX_TEXT_CHARS); None when there are none."""
    text = "\n".join(line.text for line in lines)[:MAX_TEXT_CHARS].strip()
    return text or None
