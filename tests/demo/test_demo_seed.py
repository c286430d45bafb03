"""`imagesearch demo seed` against a live local stack running the committed demo model."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest
from support.live import live_stack

from imagesearch.cli.main import main
from imagesearch.demo.gallery import GALLERY_SEED, gallery_filename, gallery_png
from imagesearch.demo.shapes import generate, sample, with_article

COUNT = 40


def test_same_seed_same_bytes() -> None:
    def png(index: int) -> bytes:
        return gallery_png(sample(index, seed=GALLERY_SEED, size=256))

    assert png(3) == png(3) != png(4)


def test_seed_fills_a_stack_once_and_search_finds_the_shapes(
    tmp_path: Path, demo_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = {gallery_filename(GALLERY_SEED, s.scene.index): s for s in generate(COUNT, seed=GALLERY_SEED)}
    with live_stack(tmp_path / "stack", model_dir=demo_bundle) as stack:
        assert stack.events is not None
        argv = ["demo", "seed", "--count", str(COUNT), "--url", stack.base_url]

        assert main(argv) == 0
        assert f"added {COUNT}, skipped 0 (already there), failed 0" in capsys.readouterr().out
        assert main(argv) == 0  # the same pictures again: the API recognises every one
        assert f"added 0, skipped {COUNT} (already there), failed 0" in capsys.readouterr().out

        assert stack.events.drain(timeout=120)
        items = httpx.get(f"{stack.base_url}/images", params={"limit": 100}).json()["items"]
        assert len(items) == COUNT
        for item in items:
            picture = expected[item["filename"]]
            assert item["status"] == "ready" and (item["width"], item["height"]) == (256, 256)
            assert item["title"] == picture.title and item["description"] == picture.caption
            assert item["tags"] == list(picture.tags)

        # the most frequent colour + shape of the gallery: its pictures lead a vector search for it
        (color, shape), n = Counter((s.color, s.shape) for s in expected.values()).most_common(1)[0]
        body = {"query": with_article(f"{color} {shape}"), "mode": "vector", "limit": n}
        results = httpx.post(f"{stack.base_url}/search", json=body).json()["results"]
        assert [r["title"].split()[1:] for r in results] == [[color, shape]] * n


def test_seed_reports_an_unreachable_api(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "seed", "--count", "2", "--url", "http://127.0.0.1:9"]) == 1
    out = capsys.readouterr().out
    assert "added 0, skipped 0 (already there), failed 2" in out and "ConnectError" in out
