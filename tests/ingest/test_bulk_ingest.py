"""`imagesearch ingest`: a folder into a running stack, resumable, with a summary."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from support.images import encode, make_image
from support.live import live_stack

from imagesearch.cli.main import main
from imagesearch.client.bulk_upload import DIRECT_UPLOAD_LIMIT


def noisy_png(side: int) -> bytes:
    """An incompressible PNG, large enough to need the presigned path."""
    pixels = np.random.default_rng(1).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "PNG")


def test_ingest_uploads_a_folder_resumes_and_reports(
    tmp_path: Path, model_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    (folder / "red.png").write_bytes(make_image(color="red"))
    (folder / "blue.jpg").write_bytes(make_image(color="blue", fmt="JPEG"))
    (folder / "nested" / "green.webp").write_bytes(make_image(color="green", fmt="WEBP"))
    (folder / "fake.jpg").write_bytes(b"this is a text file with an image name")
    (folder / "notes.txt").write_text("not an image suffix: not collected")
    big = noisy_png(1400)
    assert len(big) > DIRECT_UPLOAD_LIMIT
    (folder / "big.png").write_bytes(big)

    with live_stack(tmp_path / "stack", model_dir=model_bundle) as stack:
        assert stack.events is not None
        argv = ["ingest", str(folder), "--recursive", "--tags", "holiday", "--url", stack.base_url]

        assert main(argv) == 0
        first = capsys.readouterr().out
        assert "added 4, skipped 0 (already there), rejected 1, errors 0" in first
        assert "fake.jpg" in first and "not a supported image format" in first

        assert main(argv) == 0  # a second run sends nothing new
        assert "added 0, skipped 4 (already there), rejected 1, errors 0" in capsys.readouterr().out

        assert stack.events.drain(timeout=120)
        items = httpx.get(f"{stack.base_url}/images", params={"limit": 100}).json()["items"]
        assert sorted(i["filename"] for i in items) == ["big.png", "blue.jpg", "green.webp", "red.png"]
        assert all(i["status"] == "ready" and i["tags"] == ["holiday"] for i in items)
