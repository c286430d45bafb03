"""The web page in real headless Chromium against a live local stack: upload, watch, search, explore."""

from __future__ import annotations

import base64
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.images import encode, make_picture
from support.live import live_stack

from imagesearch.config import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed")


def picture(color: str, shape: str) -> bytes:
    return encode(make_picture(color=color, shape=shape, size=(256, 256), background="white"), "PNG")


FILES = {
    "red-circle.png": picture("red", "circle"),
    "blue-square.png": picture("blue", "square"),
    "green-triangle.png": picture("green", "triangle"),
}


@pytest.fixture
def page(tmp_path: Path, model_bundle: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with live_stack(tmp_path / "stack", model_dir=model_bundle) as stack, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.goto(stack.base_url)
        yield page
        context.close()
        browser.close()


def drop_files(page: Any, selector: str, files: dict[str, bytes]) -> None:
    """Dispatch a real drop event carrying Files (what a user's drag-and-drop produces)."""
    payload = [{"name": name, "data": base64.b64encode(data).decode()} for name, data in files.items()]
    page.evaluate(
        """([selector, files]) => {
            const transfer = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], f.name, { type: "image/png" }));
            }
            const target = document.querySelector(selector);
            for (const type of ["dragenter", "dragover", "drop"]) {
                const init = { dataTransfer: transfer, bubbles: true, cancelable: true };
                target.dispatchEvent(new DragEvent(type, init));
            }
        }""",
        [selector, payload],
    )


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def titles(page: Any, grid: str) -> list[str]:
    return [t.strip() for t in page.locator(f"{grid} .card .title").all_inner_texts()]


def test_upload_watch_search_and_explore(page: Any) -> None:
    # Upload three images by dropping them; the gallery shows them pending, then ready.
    drop_files(page, "#dropzone", FILES)
    page.wait_for_function("document.querySelectorAll('#uploads li .state').length === 3")
    page.wait_for_function("document.querySelectorAll('#gallery .badge.ready').length === 3", timeout=90_000)
    assert sorted(titles(page, "#gallery")) == sorted(FILES)
    shot(page, "1-gallery-ready")

    # A text search: the expected image comes first, with its score.
    page.fill("#query", "red circle")
    page.press("#query", "Enter")
    page.wait_for_selector("#results .card")
    assert titles(page, "#results")[0] == "red-circle.png"
    assert "score" in page.locator("#results .card").first.inner_text()
    shot(page, "2-search-red-circle")

    # Clicking a result shows similar images (the others, not itself).
    page.locator("#results .card").first.click()
    page.wait_for_selector("#similar:not([hidden]) .card")
    similar = titles(page, "#similar-results")
    assert "red-circle.png" not in similar and len(similar) == 2
    shot(page, "3-similar")

    # Dropping an image on the search box searches by example.
    drop_files(page, "#search-drop", {"query.png": FILES["blue-square.png"]})
    page.wait_for_function("document.querySelector('#search-info').textContent.includes('results in')")
    assert titles(page, "#results")[0] == "blue-square.png"
    shot(page, "4-search-by-image")


# Uploaded one at a time in this order (created_at follows it): name, colour, shape, tags.
TAGGED = [
    ("red-circle.png", "red", "circle", "warm, round"),
    ("blue-square.png", "blue", "square", "cool, angular"),
    ("yellow-circle.png", "yellow", "circle", "warm, round"),
    ("green-triangle.png", "green", "triangle", "cool, angular"),
    ("red-triangle.png", "red", "triangle", "warm, angular"),
]


def upload_tagged(page: Any) -> dict[str, dict[str, Any]]:
    """TAGGED through the API (the page's upload has no tag field), once all are ready: name -> image."""
    base = page.url.rstrip("/")
    images = {}
    for name, color, shape, tags in TAGGED:
        file = {"name": name, "mimeType": "image/png", "buffer": picture(color, shape)}
        response = page.request.post(f"{base}/images", multipart={"file": file, "tags": tags})
        assert response.ok, response.text()
        images[name] = response.json()
    deadline = time.monotonic() + 90
    while any(
        page.request.get(f"{base}/images/{i['id']}").json()["status"] != "ready" for i in images.values()
    ):
        assert time.monotonic() < deadline, "the tagged pictures did not get ready"
        page.wait_for_timeout(200)
    return images


def posts_to(path: str) -> Callable[[Any], bool]:
    return lambda request: request.method == "POST" and request.url.endswith(path)


def test_facets_sort_and_more_or_less_like_this(page: Any) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", console)
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url))
    images = upload_tagged(page)
    page.reload()
    cards, info = page.locator("#results .card"), page.locator("#search-info")
    result_titles = page.locator("#results .card .title")
    warm = [name for name, *_, tags in TAGGED if "warm" in tags]

    # A text search asks for facets and shows them as chips with counts.
    with page.expect_request(posts_to("/search")) as searched:
        page.fill("#query", "a red circle")
        page.press("#query", "Enter")
    assert searched.value.post_data_json["facets"] == ["tags", "year", "month", "place", "auto_tags"]
    expect(cards).to_have_count(len(TAGGED))
    tag_chips = page.get_by_role("group", name="Tags")
    for chip in ("warm 3", "cool 2", "round 2", "angular 3"):
        expect(tag_chips.get_by_role("button", name=chip, exact=True)).to_be_visible()
    years = Counter(image["created_at"][:4] for image in images.values())
    for year, count in years.items():
        expect(
            page.get_by_role("group", name="Years").get_by_role("button", name=f"{year} {count}")
        ).to_be_visible()
    shot(page, "6-facets")

    # A year chip sets the date range to that year; clicking it again (pressed) takes the range off.
    year, count = years.most_common(1)[0]
    year_chip = page.get_by_role("group", name="Years").get_by_role("button", name=f"{year} {count}")
    with page.expect_request(posts_to("/search")) as dated:
        year_chip.click()
    assert dated.value.post_data_json["filters"] == {
        "created_after": f"{year}-01-01T00:00:00Z",
        "created_before": f"{int(year) + 1}-01-01T00:00:00Z",
    }
    expect(page.locator("#after")).to_have_value(f"{year}-01-01")
    expect(year_chip).to_have_attribute("aria-pressed", "true")
    with page.expect_request(posts_to("/search")) as undated:
        year_chip.click()
    assert undated.value.post_data_json["filters"] == {}
    expect(page.locator("#after")).to_have_value("")

    # A tag chip narrows the results to that tag, and shows as pressed.
    with page.expect_request(posts_to("/search")) as narrowed:
        tag_chips.get_by_role("button", name="warm 3").click()
    assert narrowed.value.post_data_json["filters"] == {"tags": ["warm"]}
    expect(cards).to_have_count(len(warm))
    assert sorted(titles(page, "#results")) == sorted(warm)
    expect(page.locator("#tag")).to_have_value("warm")
    expect(tag_chips.get_by_role("button", name="warm 3")).to_have_attribute("aria-pressed", "true")

    # Sort: newest first, still narrowed.
    with page.expect_request(posts_to("/search")) as sorted_search:
        page.select_option("#sort", "newest")
    assert sorted_search.value.post_data_json["sort"] == "newest"
    assert sorted_search.value.post_data_json["filters"] == {"tags": ["warm"]}
    expect(result_titles).to_have_text(warm[::-1])
    added = page.locator("#results .card time").evaluate_all("els => els.map((el) => el.dateTime)")
    assert added == sorted(added, reverse=True) == [images[name]["created_at"] for name in warm[::-1]]
    shot(page, "7-newest-warm")

    # "Less like this" alone waits for a liked example, with a hint; the search stays on screen.
    refine = page.get_by_role("region", name="Refine")
    page.get_by_role("button", name="Less like this: yellow-circle.png").click()
    expect(refine).to_contain_text("to see recommendations")
    expect(page.get_by_role("button", name="Less like this: yellow-circle.png")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(result_titles).to_have_text(warm[::-1])
    assert not [url for url in sent if url.endswith("/recommend")]
    page.get_by_role("button", name="Remove yellow-circle.png from less like").click()
    expect(refine).to_be_hidden()

    # "More like this" asks POST /recommend with that picture (and the tag filter); the card does not open.
    liked, disliked = "red-circle.png", "red-triangle.png"
    with page.expect_request(posts_to("/recommend")) as more:
        page.get_by_role("button", name=f"More like this: {liked}").click()
    body = more.value.post_data_json
    assert body["positive"] == [{"image_id": images[liked]["id"]}] and body["negative"] == []
    assert body["filters"] == {"tags": ["warm"]} and body["limit"] == 40
    expect(info).to_have_text(re.compile(r"^2 recommendations \(1 liked, 0 disliked\)$"))
    assert sorted(titles(page, "#results")) == sorted(set(warm) - {liked})
    expect(refine).to_contain_text(liked)
    assert not [url for url in sent if url.endswith("/similar")]

    # "Less like this" (by keyboard) on another result adds a negative example.
    with page.expect_request(posts_to("/recommend")) as less:
        page.get_by_role("button", name=f"Less like this: {disliked}").press("Enter")
    body = less.value.post_data_json
    assert body["positive"] == [{"image_id": images[liked]["id"]}]
    assert body["negative"] == [{"image_id": images[disliked]["id"]}]
    expect(info).to_have_text("1 recommendation (1 liked, 1 disliked)")
    expect(result_titles).to_have_text(sorted(set(warm) - {liked, disliked}))
    shot(page, "8-recommend")

    # Clearing the refine bar goes back to the search.
    with page.expect_request(posts_to("/search")):
        refine.get_by_role("button", name="Clear", exact=True).click()
    expect(refine).to_be_hidden()
    expect(result_titles).to_have_text(warm[::-1])
    assert errors == []


def test_every_control_is_labelled_and_reachable_by_keyboard(page: Any) -> None:
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, button')]
            .filter((el) => !el.hidden && el.type !== 'hidden')
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                            && !(el.textContent || '').trim())
            .map((el) => el.outerHTML)"""
    )
    assert unlabelled == []
    page.focus("#query")
    reached = set()
    for _ in range(14):  # the date fields take four stops each (day, month, year, picker)
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.id"))
    assert {"mode", "sort", "tag", "after", "before", "dropzone"} <= reached


def test_the_key_field_appears_when_the_api_asks_for_a_key(tmp_path: Path, model_bundle: Path) -> None:
    from playwright.sync_api import sync_playwright

    from imagesearch.auth.api_keys import ApiKeys
    from imagesearch.db import Database

    with (
        live_stack(tmp_path / "stack", model_dir=model_bundle, auth_mode="api_key") as stack,
        sync_playwright() as playwright,
    ):
        assert stack.settings is not None and stack.settings.database_url is not None
        db = Database(stack.settings.database_url)
        key, _ = ApiKeys(db).create("browser-team")
        db.close()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(stack.base_url)
        page.wait_for_selector("#key-form:not([hidden])")
        assert page.evaluate("document.activeElement.id") == "api-key"
        page.fill("#api-key", key)
        page.press("#api-key", "Enter")
        drop_files(page, "#dropzone", {"red-circle.png": FILES["red-circle.png"]})
        page.wait_for_function(
            "document.querySelectorAll('#gallery .badge.ready').length === 1", timeout=60_000
        )
        shot(page, "5-api-key")
        browser.close()
