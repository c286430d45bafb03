"""Property-based fuzzing of both HTTP functions from their OpenAPI schemas (schemathesis): whatever the
input, no 5xx, and every response conforms to the documented schema. The searches run over an embedded
gallery, so results, explanations, filters and cursors are fuzzed on real rows, not empty lists."""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import UUID

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance
from support.fuzz import FUZZING, examples
from support.images import make_image

from imagesearch.config import DEFAULT_TENANT_ID, Settings
from imagesearch.db import Database
from imagesearch.local.functions import load_function
from imagesearch.runtime import get_runtime
from imagesearch.search.schemas import SearchResponse

UPLOAD = load_function("upload").app
SEARCH = load_function("search").app
upload_schema = schemathesis.openapi.from_asgi("/openapi.json", UPLOAD)
search_schema = schemathesis.openapi.from_asgi("/openapi.json", SEARCH)
FUZZ = settings(
    max_examples=examples(25), deadline=None, suppress_health_check=list(HealthCheck), derandomize=not FUZZING
)
# Schema-valid is not always acceptable here: arbitrary bytes that fit `format: binary` are not an image
# (415), a well-formed UUID may name no image (404), a cursor string may belong to no query (422). Every
# other check stays on: no 5xx, documented statuses and content types, conforming bodies, and invalid input
# rejected.
EXCLUDED = [positive_data_acceptance]


# (title, colour, shape, tags): distinct pictures (the upload function keeps one record per identical
# bytes), with words and tags for keyword queries and filters to match.
PICTURES = [
    ("red circle", "red", "circle", ["warm", "round"]),
    ("blue square", "blue", "square", ["cool", "angular"]),
    ("green triangle", "green", "triangle", ["cool", "angular"]),
    ("yellow sun", "yellow", "circle", ["warm", "round"]),
    ("red box", "red", "square", ["warm", "angular"]),
    ("blue ball", "blue", "circle", ["cool", "round"]),
    ("white sail", "white", "triangle", ["bright"]),
    ("black tile", "black", "square", []),
]
WORDS = ["red", "blue circle", "green triangle", "sun", '"red box"', "square -blue", "tile or sail", "zebra"]
TAGS = sorted({tag for *_, tags in PICTURES for tag in tags} | {"absent"})


@pytest.fixture
def gallery(settings: Settings, db: Database) -> list[UUID]:
    """Images uploaded through the upload function and embedded as the embed function does, all `ready`.

    Function-scoped, as `db` (which empties the tables) is: hypothesis runs every example of a test on one
    gallery, and the search function never changes it."""
    ids = []
    with TestClient(UPLOAD) as client:
        for title, color, shape, tags in PICTURES:
            picture = make_image(color=color, shape=shape)
            response = client.post(
                "/images", files={"file": (f"{title}.png", picture)}, data={"title": title, "tags": tags}
            )
            assert response.status_code == 201, response.text
            ids.append(UUID(response.json()["id"]))
        # Only the local stack tells the embed path about new objects; here the test does.
        ingestor = get_runtime().ingestor
        ingestor.embed_and_save([ingestor.prepare_key(f"originals/{DEFAULT_TENANT_ID}/{i}") for i in ids])
        ready = client.get("/images", params={"status": "ready", "limit": 100}).json()["items"]
        assert {UUID(image["id"]) for image in ready} == set(ids)
    with TestClient(SEARCH) as client:
        found = client.post("/search", json={"query": "a red circle"}).json()["results"]
        assert {UUID(result["id"]) for result in found} == set(ids)
    return ids


@upload_schema.parametrize()
@FUZZ
def test_upload_function_never_fails_and_keeps_its_contract(
    case: Any, settings: Settings, db: Database
) -> None:
    case.call_and_validate(excluded_checks=EXCLUDED)


@search_schema.parametrize()
@FUZZ
def test_search_function_never_fails_and_keeps_its_contract(case: Any, gallery: list[UUID]) -> None:
    case.call_and_validate(excluded_checks=EXCLUDED)


# Schemathesis draws cursors and image ids at random, and most of its bodies are invalid (422) or filter
# everything out; these tests follow real ids and cursors, so the gallery's results are paged through.
PAST, FUTURE = "2000-01-01T00:00:00Z", "2999-01-01T00:00:00Z"


@st.composite
def search_requests(draw: st.DrawFn, image_ids: list[UUID]) -> dict[str, Any]:
    """A valid POST /search body over the gallery, with a small page so the results span pages."""
    body: dict[str, Any] = {"limit": draw(st.integers(1, 3)), "explain": draw(st.booleans())}
    # Free text without control characters, which the search strips (a query of only those is a 422).
    free_text = st.text(st.characters(exclude_categories=["C"]), min_size=1, max_size=30)
    query = draw(st.one_of(st.none(), st.sampled_from(WORDS), free_text))
    has_text = query is not None and bool(query.strip())
    if query is not None:
        body["query"] = query
    if not has_text or draw(st.booleans()):
        body["image_id"] = str(draw(st.sampled_from(image_ids)))
    body["mode"] = draw(
        st.sampled_from(["hybrid", "vector", "keyword"] if has_text else ["hybrid", "vector"])
    )
    filters: dict[str, Any] = {}
    if draw(st.booleans()):
        filters["tags"] = draw(st.lists(st.sampled_from(TAGS), min_size=1, max_size=2, unique=True))
        filters["tags_mode"] = draw(st.sampled_from(["any", "all"]))
    after, before = draw(st.sampled_from([None, PAST, FUTURE])), draw(st.sampled_from([None, PAST, FUTURE]))
    if after is not None:
        filters["created_after"] = after
    if before is not None and (after is None or after < before):
        filters["created_before"] = before
    if filters:
        body["filters"] = filters
    if draw(st.booleans()):
        body["min_score"] = draw(st.floats(-1.0, 1.0))
    # The ranking options: a cut-off, a date sort, facets, diversity or duplicate collapse.
    body["sort"] = draw(st.sampled_from(["relevance", "relevance", "newest", "oldest"]))
    cutoff = draw(st.sampled_from([None, "auto", "none"]))
    if cutoff is not None:
        body["cutoff"] = cutoff
    if draw(st.booleans()):
        body["facets"] = draw(st.lists(st.sampled_from(["tags", "year", "month"]), min_size=1, unique=True))
    if body["sort"] == "relevance" and draw(st.booleans()):
        body["diversity"] = draw(st.sampled_from([0.0, 0.3, 1.0]))
    if draw(st.booleans()):
        body["collapse"] = "duplicates"
    return body


def page_through(client: TestClient, path: str, first: dict[str, Any], *, pages_at_most: int) -> list[Any]:
    """Every result of a query, following next_cursor from the first page (a POST body or GET params)."""
    results: list[Any] = []
    cursor = None
    for _ in range(pages_at_most):
        values = {**first, "cursor": cursor} if cursor else first
        response = client.post(path, json=values) if path == "/search" else client.get(path, params=values)
        assert response.status_code == 200, (path, values, response.text)
        page = SearchResponse.model_validate(response.json())
        assert len(page.results) <= first["limit"]
        results.extend(page.results)
        cursor = page.next_cursor
        if cursor is None:
            return results
    raise AssertionError(f"still a next_cursor after {pages_at_most} pages of {path} {first}")


def assert_one_page_of_all(
    client: TestClient, path: str, first: dict[str, Any], gallery: list[UUID]
) -> list[Any]:
    """Page by page, the same results in the same order as one page of them all; return them."""
    results = page_through(client, path, first, pages_at_most=len(gallery) + 1)
    everything = page_through(client, path, {**first, "limit": 100}, pages_at_most=1)
    assert [r.id for r in results] == [r.id for r in everything]
    assert len({r.id for r in results}) == len(results)  # no result on two pages
    sort = first.get("sort", "relevance")
    if sort != "relevance":
        dates = [r.created_at for r in results]
        assert dates == sorted(dates, reverse=sort == "newest")
    elif not first.get("diversity") and not first.get("collapse"):
        assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert set(r.id for r in results) <= set(gallery)
    return results


@settings(
    max_examples=examples(20), deadline=None, suppress_health_check=list(HealthCheck), derandomize=not FUZZING
)
@given(data=st.data())
def test_searches_page_through_real_results_by_cursor_and_offset(
    gallery: list[UUID], data: st.DataObject
) -> None:
    body = data.draw(search_requests(gallery))
    with TestClient(SEARCH) as client:
        results = assert_one_page_of_all(client, "/search", body, gallery)
        offset = data.draw(st.integers(0, len(results)))
        by_offset = client.post("/search", json={**body, "offset": offset})
        assert by_offset.status_code == 200, by_offset.text
        page = SearchResponse.model_validate(by_offset.json()).results
        assert [r.id for r in page] == [r.id for r in results[offset : offset + body["limit"]]]
        if body.get("facets"):
            facets = SearchResponse.model_validate(by_offset.json()).facets
            assert facets is not None and set(facets) == set(body["facets"])
            if "tags" in facets and not body.get("collapse"):  # counted over all of them, not the page
                counts = {f.value: f.count for f in facets["tags"]}
                assert counts == dict(Counter(t for r in results for t in r.tags).most_common(20))
    filters = body.get("filters", {})
    if filters.get("created_after") == FUTURE or filters.get("created_before") == PAST:
        assert results == []
    for result in results:
        assert (result.explain is not None) == body["explain"]
        assert result.score >= body.get("min_score", -1.0)
        if body.get("collapse"):
            assert result.duplicates is not None and result.duplicates >= 0
        if filters.get("tags_mode") == "any":
            assert set(result.tags) & set(filters["tags"])
        elif filters.get("tags_mode") == "all":
            assert set(result.tags) >= set(filters["tags"])


@pytest.mark.parametrize("limit", [1, 3])
def test_similar_images_page_through_real_results_by_cursor(gallery: list[UUID], limit: int) -> None:
    with TestClient(SEARCH) as client:
        for image_id in gallery:
            results = assert_one_page_of_all(client, f"/images/{image_id}/similar", {"limit": limit}, gallery)
            assert {r.id for r in results} == set(gallery) - {image_id}
