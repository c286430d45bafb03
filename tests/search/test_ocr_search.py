"""A word written in a picture finds it: upload -> ready -> text read (OCR) -> a one-word search returns the
picture first. End to end over the local stack with the `ocr` setting on (the tests' default is off)."""

from __future__ import annotations

from pathlib import Path

import httpx
from support.images import make_image
from support.live import live_stack

from imagesearch.demo.text_pictures import png_bytes, text_picture

SIGNS = {
    "lighthouse": text_picture(["Lighthouse"], size=40, kind="gradient", seed=1),
    "bakery": text_picture(["BAKERY", "open"], size=32, kind="plain", seed=2),
    "garden": text_picture(["Garden"], size=28, angle=10, kind="photo", seed=3),
}


def test_a_one_word_search_returns_the_picture_holding_that_word_first(
    tmp_path: Path, model_bundle: Path
) -> None:
    with (
        live_stack(tmp_path / "stack", model_dir=model_bundle, ocr=True) as stack,
        httpx.Client(base_url=stack.base_url, timeout=30) as client,
    ):
        ids: dict[str, str] = {}
        for name, picture in SIGNS.items():
            # Neutral names: only the pixels say which word a picture holds.
            created = client.post("/images", files={"file": (f"{len(ids)}.png", png_bytes(picture))})
            assert created.status_code == 201, created.text
            ids[name] = created.json()["id"]
        shape = client.post("/images", files={"file": ("shape.png", make_image(color="red", shape="circle"))})
        assert shape.status_code == 201, shape.text
        assert stack.events is not None and stack.events.drain(timeout=120)

        for name, image_id in ids.items():
            image = client.get(f"/images/{image_id}").json()
            assert image["status"] == "ready"
            assert name in (image["text"] or "").lower()
        assert client.get(f"/images/{shape.json()['id']}").json()["text"] is None

        for name, image_id in ids.items():
            for mode in ("hybrid", "keyword"):
                found = client.post("/search", json={"query": name, "mode": mode})
                assert found.status_code == 200, found.text
                assert [r["id"] for r in found.json()["results"]][:1] == [image_id], (name, mode)
