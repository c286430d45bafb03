"""The web page in real headless Chromium against a live local stack: upload, watch, search, explore."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
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
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.id"))
    assert {"mode", "tag", "after", "before", "dropzone"} <= reached


def test_the_key_field_appears_when_the_api_asks_for_a_key(tmp_path: Path, model_bundle: Path) -> None:
    from playwright.sync_api import sync_playwright

    from imagesearch.auth.api_keys import ApiKeys
    from imagesearch.db import Database

    overrides = {"model_dir": model_bundle, "auth_mode": "api_key"}
    with live_stack(tmp_path / "stack", **overrides) as stack, sync_playwright() as playwright:
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
