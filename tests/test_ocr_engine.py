"""The OCR engine (RapidOCR's ONNX models) on rendered words, and on pictures that hold none."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from PIL import Image

from imagesearch.demo.text_pictures import text_picture
from imagesearch.enrichment.ocr import (
    MAX_SIDE,
    MAX_TEXT_CHARS,
    OcrEngine,
    TextLine,
    available,
    fitted,
    joined_text,
)


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return OcrEngine(threads=1)


def words_of(lines: list[TextLine]) -> set[str]:
    return set(re.findall(r"[a-z]+", (joined_text(lines) or "").lower()))


def test_the_engine_is_installed_with_the_test_extra() -> None:
    assert available()


@pytest.mark.parametrize(
    ("words", "size", "angle", "kind"),
    [
        (["Harbour", "bakery"], 32, 0, "plain"),
        (["LIGHTHOUSE", "ticket"], 24, 0, "gradient"),
        (["pharmacy", "Entrance"], 40, 10, "noisy"),
        (["museum", "garden"], 48, -30, "photo"),
    ],
)
def test_rendered_words_are_read(
    engine: OcrEngine, words: list[str], size: int, angle: int, kind: str
) -> None:
    picture = text_picture(words, size=size, angle=angle, kind=kind, seed=3)

    lines = engine.read(picture)

    assert {w.lower() for w in words} <= words_of(lines)
    assert all(line.score >= engine.min_score for line in lines)


def test_a_blank_picture_has_no_text(engine: OcrEngine) -> None:
    lines = engine.read(Image.new("RGB", (640, 480), "white"))

    assert lines == []
    assert joined_text(lines) is None


@pytest.mark.parametrize("size", [(1, 1), (5, 5), (3, 400)])
def test_a_picture_too_small_for_text_has_none(engine: OcrEngine, size: tuple[int, int]) -> None:
    assert engine.read(Image.new("RGB", size, "black")) == []


def test_a_huge_picture_is_reduced_before_it_is_read(engine: OcrEngine) -> None:
    picture = text_picture(["Welcome"], size=200, width=6000, height=4000, seed=1)

    assert max(fitted(picture).size) == MAX_SIDE
    assert fitted(picture).size == (MAX_SIDE, MAX_SIDE * 4000 // 6000)
    assert "welcome" in words_of(engine.read(picture))


def test_grey_and_transparent_pictures_are_read_as_rgb(engine: OcrEngine) -> None:
    picture = text_picture(["Station"], size=36, seed=2)

    assert "station" in words_of(engine.read(picture.convert("L")))
    assert "station" in words_of(engine.read(picture.convert("RGBA")))


def test_the_stored_text_is_one_line_per_line_and_capped() -> None:
    assert joined_text([TextLine("Open", 0.9), TextLine("Daily 9-5", 0.8)]) == "Open\nDaily 9-5"
    many = [TextLine("x" * 1000, 0.9)] * 30

    assert len(joined_text(many) or "") == MAX_TEXT_CHARS


def test_importing_the_embed_function_and_the_ocr_modules_loads_no_ocr_engine() -> None:
    """The embed function's layers have no rapidocr or OpenCV: only reading a picture may import them."""
    code = (
        "import sys; from imagesearch.local.functions import load_function; load_function('embed'); "
        "import imagesearch.ingest.ocr, imagesearch.enrichment.ocr, imagesearch.local.ocr; "
        "engines = ('rapidocr_onnxruntime', 'cv2', 'shapely'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in engines))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
