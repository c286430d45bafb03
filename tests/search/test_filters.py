"""A search filter is declared once: a SearchFilters field, and its predicate in images/filters.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from imagesearch.images.filters import FILTER_PREDICATES
from imagesearch.search.schemas import FILTER_FIELDS, SearchFilters

# A value for every filter; a new filter needs one here (and nothing else in the tests of this module).
SAMPLES: dict[str, Any] = {
    "tags": ["beach"],
    "auto_tags": ["red"],
    "created_after": datetime(2026, 1, 1, tzinfo=UTC),
    "created_before": datetime(2026, 2, 1, tzinfo=UTC),
    "taken_after": datetime(2024, 7, 1),
    "taken_before": datetime(2024, 8, 1),
    "camera": "Canon",
    "near": {"lat": 48.8584, "lon": 2.2945, "radius_km": 5},
    "bbox": {"min_lat": 48.0, "min_lon": 2.0, "max_lat": 49.0, "max_lon": 3.0},
    "place": "Lisbon, Portugal",
}


def test_every_filter_field_has_a_sample() -> None:
    assert set(FILTER_FIELDS) == set(SAMPLES)


@pytest.mark.parametrize("tags_mode", ["any", "all"])
def test_each_filter_that_is_set_names_a_predicate_whose_parameters_it_gives(tags_mode: str) -> None:
    for name in FILTER_FIELDS:
        filters = SearchFilters.model_validate({name: SAMPLES[name], "tags_mode": tags_mode})
        (predicate,) = filters.predicates()
        sql = FILTER_PREDICATES[predicate].as_string(None)
        placeholders = set(re.findall(r"%\((\w+)\)s", sql))
        assert placeholders and placeholders <= set(filters.parameters())
        assert all(filters.parameters()[p] is not None for p in placeholders)


def test_every_predicate_is_reachable_and_unset_filters_add_none() -> None:
    reachable = {p for mode in ("any", "all") for p in SearchFilters(**SAMPLES, tags_mode=mode).predicates()}
    reachable |= {SearchFilters(place=place).predicates()[0] for place in ("PT", "Cascais, Lisbon, PT")}
    assert reachable == set(FILTER_PREDICATES)
    assert SearchFilters().predicates() == ()
    assert SearchFilters(tags=[]).predicates() == ()  # no tags is no tag filter, not "none match"
