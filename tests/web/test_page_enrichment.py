"""The web page shows what enrichment found: date taken and place on the cards, what the query was
understood to say, place facets, the taken sorts, and the near-duplicates view (headless Chromium)."""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from support.exif import photo_with_exif
from support.live import live_stack

from imagesearch.config import REPO_ROOT
from imagesearch.demo.photos import photo_jpeg

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed")

LISBON = (38.7223, -9.1393)


@pytest.fixture
def page(tmp_path: Path, model_bundle: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with live_stack(tmp_path / "stack", model_dir=model_bundle) as stack, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        def console(message: Any) -> None:
            if message.type == "error":
                errors.append(message.text)

        page.on("console", console)
        page.goto(stack.base_url)
        yield page
        assert errors == []
        context.close()
        browser.close()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def upload(page: Any, files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    """Upload through the API, one at a time in order, and wait until all are ready: name -> image."""
    base = page.url.rstrip("/")
    images = {}
    for name, data in files.items():
        file = {"name": name, "mimeType": "image/jpeg", "buffer": data}
        response = page.request.post(f"{base}/images", multipart={"file": file})
        assert response.ok, response.text()
        images[name] = response.json()

    def current() -> dict[str, dict[str, Any]]:
        return {name: page.request.get(f"{base}/images/{i['id']}").json() for name, i in images.items()}

    deadline = time.monotonic() + 90
    while not all(image["status"] == "ready" for image in current().values()):
        assert time.monotonic() < deadline, "the uploads did not get ready"
        page.wait_for_timeout(200)
    # Read again once all are ready: an image's save also updates the others it groups with, so a read of
    # the first image taken before the last one's save would miss the group that save gave it.
    return current()


def posts_to(path: str) -> Callable[[Any], bool]:
    return lambda request: request.method == "POST" and request.url.endswith(path)


def test_cards_show_date_taken_and_place_and_the_query_understood(page: Any) -> None:
    from playwright.sync_api import expect

    files = {
        "lisbon.jpg": photo_with_exif(
            taken="2024:07:14 10:30:00", gps=LISBON, make="Canon", model="Canon EOS R5"
        ),
        "undated.jpg": photo_with_exif(color="blue", shape="square"),
    }
    images = upload(page, files)
    assert images["lisbon.jpg"]["place"]["city"] == "Lisbon"
    page.reload()

    # The gallery card: the date as the camera wrote it (no time-zone shift), the place, the camera in
    # the tooltip; the undated picture shows neither.
    lisbon = page.locator(f'#gallery .card[data-id="{images["lisbon.jpg"]["id"]}"]')
    expect(lisbon.locator(".taken")).to_have_text("14 Jul 2024")
    expect(lisbon.locator(".place")).to_have_text("Lisbon, Portugal")
    expect(lisbon).to_have_attribute("title", "taken 14 Jul 2024 10:30 · Lisbon, Portugal · Canon EOS R5")
    assert "taken 14 Jul 2024, Lisbon, Portugal" in (lisbon.get_attribute("aria-label") or "")
    auto_tags = images["lisbon.jpg"]["auto_tags"]
    assert auto_tags  # the demo model labels a red circle
    expect(lisbon.locator(".tag.auto")).to_have_text(auto_tags[:3])
    undated = page.locator(f'#gallery .card[data-id="{images["undated.jpg"]["id"]}"]')
    expect(undated.locator(".taken, .place")).to_have_count(0)

    # "circle 2024": the year becomes the taken filter; the info line says so and offers the literal text.
    understood = page.locator("#understood")
    with page.expect_request(posts_to("/search")) as searched:
        page.fill("#query", "circle 2024")
        page.press("#query", "Enter")
    assert "parse" not in searched.value.post_data_json
    assert searched.value.post_data_json["facets"] == ["tags", "year", "month", "place", "auto_tags"]
    expect(understood).to_contain_text("Understood: taken 2024 · searching “circle”")
    expect(page.locator("#results .card .title")).to_have_text(["lisbon.jpg"])
    expect(page.locator("#results .card .taken")).to_have_text(["14 Jul 2024"])
    expect(page.locator("#results .card .place")).to_have_text(["Lisbon, Portugal"])
    places = page.get_by_role("group", name="Places")
    expect(places.get_by_role("button", name="Lisbon, Portugal 1")).to_be_visible()
    shot(page, "9-understood-and-places")

    # A place chip filters by that place.
    with page.expect_request(posts_to("/search")) as narrowed:
        places.get_by_role("button", name="Lisbon, Portugal 1").click()
    assert narrowed.value.post_data_json["filters"] == {"place": "Lisbon, Portugal"}
    expect(places.get_by_role("button", name="Lisbon, Portugal 1")).to_have_attribute("aria-pressed", "true")
    with page.expect_request(posts_to("/search")):
        places.get_by_role("button", name="Lisbon, Portugal 1").click()

    # The literal text instead: parse off, and the line goes.
    with page.expect_request(posts_to("/search")) as literal:
        understood.get_by_role("button", name="Search “circle 2024” as written").click()
    assert literal.value.post_data_json["parse"] is False
    expect(page.locator("#search-info")).not_to_have_text("searching…")
    expect(understood).to_be_hidden()

    # The taken sorts.
    with page.expect_request(posts_to("/search")) as sorted_search:
        page.select_option("#sort", "taken_newest")
    assert sorted_search.value.post_data_json["sort"] == "taken_newest"
    expect(page.locator("#search-info")).to_contain_text("taken, newest first")


def resaved(data: bytes, *, quality: int, scale: float) -> bytes:
    """The JPEG decoded, resized and saved again at another quality: a near-duplicate."""
    img: Image.Image = Image.open(io.BytesIO(data))
    img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def test_the_duplicates_view_lists_a_copy_with_its_original(page: Any) -> None:
    from playwright.sync_api import expect

    original = photo_jpeg(640, 480, seed=7, quality=90)
    images = upload(page, {"original.jpg": original, "copy.jpg": resaved(original, quality=60, scale=0.75)})
    assert images["original.jpg"]["duplicate_group"] is not None
    assert images["copy.jpg"]["duplicate_group"] == images["original.jpg"]["duplicate_group"]
    page.reload()

    toggle = page.get_by_role("button", name="Show duplicates")
    with page.expect_request(lambda r: "/duplicates?" in r.url) as listed:
        toggle.click()
    assert "limit=10" in listed.value.url
    groups = page.locator("#duplicates > li")
    expect(groups).to_have_count(1)
    expect(groups.first.locator(".card .title")).to_have_text(["original.jpg", "copy.jpg"])
    expect(groups.first.locator("h3")).to_have_text("2 near-duplicates")
    expect(groups.first.locator(".card .note").first).to_have_text("first of the group")
    expect(groups.first.locator(".card .note").nth(1)).to_contain_text("apart")
    expect(page.locator("#duplicates-info")).to_have_text("1 group of near-duplicates")
    expect(page.locator("#duplicates-more")).to_be_hidden()
    expect(page.get_by_role("button", name="Hide duplicates")).to_have_attribute("aria-expanded", "true")
    shot(page, "10-duplicates")
