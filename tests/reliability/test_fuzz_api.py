"""Property-based fuzzing of both HTTP functions from their OpenAPI schemas (schemathesis): whatever the
input, no 5xx, and every response conforms to the documented schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from support.fuzz import FUZZING, examples
from support.images import make_image

from imagesearch.config import Settings
from imagesearch.db import Database
from imagesearch.local.functions import load_function

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


@pytest.fixture
def gallery(settings: Settings, db: Database) -> None:
    """A few images, so searches and example lookups have something to find."""
    with TestClient(UPLOAD) as client:
        for color in ("red", "blue"):
            client.post(
                "/images", files={"file": (f"{color}.png", make_image(color=color))}, data={"title": color}
            )


@upload_schema.parametrize()
@FUZZ
def test_upload_function_never_fails_and_keeps_its_contract(
    case: Any, settings: Settings, db: Database
) -> None:
    case.call_and_validate(excluded_checks=EXCLUDED)


@search_schema.parametrize()
@FUZZ
def test_search_function_never_fails_and_keeps_its_contract(case: Any, gallery: None) -> None:
    case.call_and_validate(excluded_checks=EXCLUDED)
